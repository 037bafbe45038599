# Prisma Glow: one image for the web process (gunicorn) and the background worker (db_worker).
# Build:  docker build -t prisma-glow .      Run: see docker-compose.yml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PRISMA_GLOW_VAR_DIR=/data \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    DJANGO_MEDIA_ROOT=/data/media

WORKDIR /app

COPY . .
# Static files are collected at build time; the key below exists only for that command.
RUN pip install . \
    && DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdefghijklmnop \
       python manage.py collectstatic --noinput -v 0 \
    && useradd --system --uid 10001 --home-dir /data prisma \
    && mkdir -p /data/media && chown -R prisma /data

USER prisma
VOLUME ["/data"]
EXPOSE 8000

# The web process; docker-compose.yml runs the worker from the same image with `manage.py db_worker`.
CMD ["gunicorn", "prisma_glow.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--threads", "4", "--timeout", "180", "--access-logfile", "-"]
