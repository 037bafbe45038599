#!/bin/sh
# Run once by the postgres image when it creates the database (/docker-entrypoint-initdb.d): the
# application's login role, which owns nothing. The owner (POSTGRES_USER) runs the migrations and then
# `manage.py grant_app_role prisma_glow_app` (docker-compose.yml's migrate service); web and worker
# connect as prisma_glow_app, which cannot change audit events nor disable their triggers
# (docs/security.md). For a database created before this script, run the CREATE ROLE by hand.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set app_password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE prisma_glow_app LOGIN PASSWORD :'app_password';
SQL
