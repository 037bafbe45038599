"""Prisma Glow settings: one module, configured from the environment.

Development defaults are safe and need nothing: SQLite under ``var/`` and a secret key generated once
into ``var/secret_key``. Production mode (``DJANGO_DEBUG=0`` plus ``DJANGO_SECRET_KEY``) passes
``manage.py check --deploy`` without warnings once REDIS_URL is set. Every variable is listed in the README.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
# The platform's own templates and static files live in the package (prisma_glow is not an installed
# app: its admin is django.contrib.admin's), so a wheel carries them; each app carries its own.
PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("PRISMA_GLOW_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DJANGO_DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Key for encrypting provider API keys and HTTP tool secrets at rest; defaults to one derived from
# SECRET_KEY. Set it explicitly to rotate SECRET_KEY without losing stored secrets.
FIELD_ENCRYPTION_KEY = os.environ.get("DJANGO_FIELD_ENCRYPTION_KEY", "")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# A form that fails the CSRF check (open too long, another sign-in) is explained in the admin's layout
# to staff under /admin/ (prisma_glow/admin/refusal.py); elsewhere Django's own page.
CSRF_FAILURE_VIEW = "prisma_glow.admin.refusal.csrf_failure"

INSTALLED_APPS = [
    "prisma_glow.apps.PrismaGlowAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "heroicons",  # the staff UI's icons: pages use {% icon %} (prisma_glow/admin/icons.py)
    "csp",
    "axes",
    "django_otp",  # second factors (prisma_glow/factors.py); the devices are accounts' own
    # Passkeys: django-otp-webauthn's WebAuthnCredential device and helper only (the views are accounts').
    "prisma_glow.accounts.apps.PasskeyDevicesConfig",
    "prisma_glow.accounts",  # second-factor devices, signing in with a code, the two-step sign-in page
    # Before django_tasks_db: its db_worker command (with a lease) replaces django-tasks-db's.
    "prisma_glow.worker",
    "django_tasks_db",
    "prisma_glow.tenancy",
    "prisma_glow.audit",
    "prisma_glow.api",
    "agents",
    "personas",
    "tools",
    "guardrails",
    "knowledge",
    "evaluations",  # above agents: suites, runs, the activation gate (issue 17)
]

MIDDLEWARE = [
    "prisma_glow.health.ProbeMiddleware",  # /healthz and /readyz for any Host (load balancers)
    "django.middleware.security.SecurityMiddleware",
    "prisma_glow.api.middleware.APIGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "prisma_glow.audit.context.AuditRequestMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): a second factor checked this session
    # Turns a refused sign-in of a locked pair into the login page saying so (prisma_glow/tenancy/lockout.py).
    "axes.middleware.AxesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "prisma_glow.middleware.SessionExpiryMiddleware",  # idle and absolute limits (prisma_glow.sessions)
    # With PRISMA_GLOW_REQUIRE_MFA: admin pages only for sessions that checked a second factor.
    "prisma_glow.accounts.middleware.SecondFactorRequiredMiddleware",
    "prisma_glow.middleware.BusyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "prisma_glow.urls"
WSGI_APPLICATION = "prisma_glow.wsgi.application"
ASGI_APPLICATION = "prisma_glow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the apps' templates: the platform's admin/base_site.html, change_form.html… replace
        # django.contrib.admin's.
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "prisma_glow.context_processors.currency",
            ],
            # Template tags of the staff UI (prisma_glow is not an app, so they are named here).
            "libraries": {"admin_ui": "prisma_glow.admin.templatetags"},
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'prisma_glow.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            # Writers queue at BEGIN instead of failing with "database is locked" when a read turns
            # into a write, and the audit chain (read its head, then append) cannot fork.
            "transaction_mode": "IMMEDIATE",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A server that does not answer, or a connection left half-open by a network fault, fails within
    # about DB_DEAD_CONNECTION_SECONDS instead of hanging a request or the worker (which then
    # reconnects) for the operating system's ~2 hours. Options given in DATABASE_URL's query win.
    DB_CONNECT_TIMEOUT = env_int("DJANGO_DB_CONNECT_TIMEOUT", 10)
    DB_DEAD_CONNECTION_SECONDS = env_int("DJANGO_DB_DEAD_CONNECTION_SECONDS", 60)
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": DB_CONNECT_TIMEOUT,
        # TCP keepalives probe an idle connection after half the time, three probes in the rest...
        "keepalives": 1,
        "keepalives_idle": max(1, DB_DEAD_CONNECTION_SECONDS // 2),
        "keepalives_interval": max(1, DB_DEAD_CONNECTION_SECONDS // 6),
        "keepalives_count": 3,
        # ...and data the server never acknowledges (a query sent into a dead link) times out too.
        "tcp_user_timeout": DB_DEAD_CONNECTION_SECONDS * 1000,
        **DATABASES["default"].get("OPTIONS", {}),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# How many times a write service runs when its transaction loses a deadlock or a serialisation
# failure before the API answers 503 (prisma_glow.locking.retry_on_conflict).
DB_WRITE_ATTEMPTS = env_int("PRISMA_GLOW_WRITE_ATTEMPTS", 3)

# --- Cache (Redis when REDIS_URL is set; rate limits need a shared cache in production) ------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Without REDIS_URL each process counts rate limits on its own: fine for `make run` and the tests,
# and `check --deploy` warns about it (prisma_glow.W001, prisma_glow/checks.py).
RATELIMIT_ENABLE = env_bool("DJANGO_RATELIMIT_ENABLE", True)
# API rate limits ("N/s", "N/m", "N/h"; empty disables one): per API key or user, for executions,
# and for failed authentications per client IP (see prisma_glow/api/throttling.py).
API_RATE_LIMIT = os.environ.get("PRISMA_GLOW_API_RATE", "600/m")
API_EXECUTE_RATE_LIMIT = os.environ.get("PRISMA_GLOW_API_EXECUTE_RATE", "60/m")
API_AUTH_FAILURE_RATE_LIMIT = os.environ.get("PRISMA_GLOW_API_AUTH_FAILURE_RATE", "60/m")
# "Test connection" on a provider's page: calls the provider, so limited per user (empty disables).
PROVIDER_TEST_RATE_LIMIT = os.environ.get("PRISMA_GLOW_PROVIDER_TEST_RATE", "10/m")

# --- API key policy -------------------------------------------------------------------------------
# Every key expires: at most this many days after it is created or rotated (a key created without an
# expiry gets exactly this many). Keys within API_KEY_WARN_DAYS of expiry are flagged on the dashboard
# and in every response to them (X-API-Key-Expiry-Warning). See docs/api.md "Authentication".
API_KEY_MAX_DAYS = env_int("PRISMA_GLOW_API_KEY_MAX_DAYS", 90)
API_KEY_WARN_DAYS = env_int("PRISMA_GLOW_API_KEY_WARN_DAYS", 14)
if not 1 <= API_KEY_MAX_DAYS <= 3650 or not 0 <= API_KEY_WARN_DAYS <= API_KEY_MAX_DAYS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "PRISMA_GLOW_API_KEY_MAX_DAYS must be between 1 and 3650, and PRISMA_GLOW_API_KEY_WARN_DAYS "
        "between 0 and PRISMA_GLOW_API_KEY_MAX_DAYS."
    )

# --- Agent runtime --------------------------------------------------------------------------------
# The answer length (tokens) sent to the provider for a persona without its own max_tokens, so a
# small local model cannot generate until its context is full. Between 1 and 128000, as on personas.
DEFAULT_MAX_TOKENS = env_int("PRISMA_GLOW_DEFAULT_MAX_TOKENS", 1024)
if not 1 <= DEFAULT_MAX_TOKENS <= 128000:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PRISMA_GLOW_DEFAULT_MAX_TOKENS must be between 1 and 128000.")

# Conversations: how much of a conversation's history goes to the model with the next question — its
# last completed turns, at most this many, and only whole turns within this many characters (questions
# and answers together; the newest first). 0 turns sends no history.
CONVERSATION_HISTORY_TURNS = env_int("PRISMA_GLOW_CONVERSATION_HISTORY_TURNS", 10)
CONVERSATION_HISTORY_CHARS = env_int("PRISMA_GLOW_CONVERSATION_HISTORY_CHARS", 16000)
if CONVERSATION_HISTORY_TURNS < 0 or CONVERSATION_HISTORY_CHARS < 0:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("The conversation history limits cannot be negative.")

# Approval of tool calls (agents.runtime.approvals): a call that waits for a person longer than this
# many hours expires, and its run ends failed with that reason.
TOOL_APPROVAL_HOURS = float(os.environ.get("PRISMA_GLOW_TOOL_APPROVAL_HOURS") or 24)
if not 0 < TOOL_APPROVAL_HOURS <= 24 * 90:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "PRISMA_GLOW_TOOL_APPROVAL_HOURS must be more than 0 and at most 2160 (90 days)."
    )

# --- Invitations and e-mail ---------------------------------------------------------------------
# Owners and admins invite colleagues by e-mail (prisma_glow/tenancy/services.py): the one-time link
# works for INVITATION_HOURS. E-mail goes through Django's backend: the console (printed by the
# server) in development, SMTP from these variables otherwise. While the console backend is active the
# inviter's answer also carries the link, so that `make run` users can follow it; never otherwise.
INVITATION_HOURS = env_int("PRISMA_GLOW_INVITATION_HOURS", 48)
if not 1 <= INVITATION_HOURS <= 24 * 30:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PRISMA_GLOW_INVITATION_HOURS must be between 1 and 720.")
# Django's MAILERS (6.1): one "default" mailer. DJANGO_EMAIL_BACKEND names another backend (a dotted
# path); the SMTP options apply to the SMTP backend only. `check --deploy` refuses the console backend.
EMAIL_CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
_EMAIL_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_email_backend = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    EMAIL_CONSOLE_BACKEND if DEBUG else _EMAIL_SMTP_BACKEND
)
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": {
            "host": os.environ.get("DJANGO_EMAIL_HOST", "localhost"),
            "port": env_int("DJANGO_EMAIL_PORT", 25),
            "username": os.environ.get("DJANGO_EMAIL_HOST_USER", ""),
            "password": os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("DJANGO_EMAIL_USE_TLS", False),
            "use_ssl": env_bool("DJANGO_EMAIL_USE_SSL", False),
            "timeout": env_int("DJANGO_EMAIL_TIMEOUT", 10),
        }
        if _email_backend == _EMAIL_SMTP_BACKEND
        else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "Prisma Glow <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Background tasks (django.tasks) ---------------------------------------------------------
TASKS_BACKEND = os.environ.get("DJANGO_TASKS_BACKEND", "django_tasks_db.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND}}
# The worker's lease (prisma_glow/worker): each db_worker beats every WORKER_HEARTBEAT_SECONDS; a
# running task whose worker has not beaten for WORKER_LEASE_SECONDS is taken over by another worker
# and run again, up to WORKER_MAX_ATTEMPTS claims in all, then failed with the reason. After a lost
# database connection the worker retries after 0.5 s, doubling up to WORKER_RECONNECT_MAX_SECONDS.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("PRISMA_GLOW_WORKER_HEARTBEAT_SECONDS") or 5)
WORKER_LEASE_SECONDS = float(os.environ.get("PRISMA_GLOW_WORKER_LEASE_SECONDS") or 60)
WORKER_MAX_ATTEMPTS = env_int("PRISMA_GLOW_WORKER_MAX_ATTEMPTS", 3)
WORKER_RECONNECT_MAX_SECONDS = float(os.environ.get("PRISMA_GLOW_WORKER_RECONNECT_MAX_SECONDS") or 30)

# --- Auth --------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Sign-in lockout (django-axes, prisma_glow/tenancy/lockout.py): LOCKOUT_FAILURES failed sign-ins for
# one username from one address lock that pair (only) for LOCKOUT_MINUTES, even with the right
# password; the lock is audited, owners see and lift their members' locks on the dashboard, operators
# with `manage.py unlock_login`. The address is REMOTE_ADDR (as in the audit log): behind a proxy,
# the proxy sets it from its trusted header (gunicorn's --forwarded-allow-ips), never a client.
LOCKOUT_FAILURES = env_int("PRISMA_GLOW_LOCKOUT_FAILURES", 5)
LOCKOUT_MINUTES = env_int("PRISMA_GLOW_LOCKOUT_MINUTES", 15)
if LOCKOUT_FAILURES < 1 or LOCKOUT_MINUTES < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "PRISMA_GLOW_LOCKOUT_FAILURES and PRISMA_GLOW_LOCKOUT_MINUTES must be at least 1."
    )
# Second factors (django-otp, prisma_glow/factors.py): TOTP with one-time backup codes. Required at every
# staff sign-in when PRISMA_GLOW_REQUIRE_MFA is on (the default when DJANGO_DEBUG=0); development offers
# enrolment. A sensitive operation needs a factor checked within PRISMA_GLOW_STEP_UP_MINUTES (step-up)
# from every session user who has a factor, and from everyone when factors are required.
PRISMA_GLOW_REQUIRE_MFA = env_bool("PRISMA_GLOW_REQUIRE_MFA", not DEBUG)
PRISMA_GLOW_STEP_UP_MINUTES = env_int("PRISMA_GLOW_STEP_UP_MINUTES", 10)
if not 1 <= PRISMA_GLOW_STEP_UP_MINUTES <= 24 * 60:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PRISMA_GLOW_STEP_UP_MINUTES must be between 1 and 1440.")
OTP_TOTP_ISSUER = "Prisma Glow"
# A wrong code doubles the wait before the next attempt on that device (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# Passkeys (WebAuthn, django-otp-webauthn's device and helper; the ceremonies are prisma_glow/accounts/
# passkeys.py). The relying party is PRISMA_GLOW_PASSKEY_RP_ID, by default each request's host name
# (never an IP address: passkeys refuse them). A ceremony's origin must be the request's own origin
# (scheme and host, checked against ALLOWED_HOSTS), and one of PRISMA_GLOW_PASSKEY_ORIGINS when set.
OTP_WEBAUTHN_RP_ID = os.environ.get("PRISMA_GLOW_PASSKEY_RP_ID", "").strip()
OTP_WEBAUTHN_RP_ID_CALLABLE = "prisma_glow.accounts.passkeys.rp_id"
OTP_WEBAUTHN_RP_NAME = "Prisma Glow"
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("PRISMA_GLOW_PASSKEY_ORIGINS")
OTP_WEBAUTHN_HELPER_CLASS = "prisma_glow.accounts.passkeys.Helper"
# Second factor only: a passkey never replaces the password (the package's passwordless views are unused).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_TIMEOUT_SECONDS = 2 * 60

AUTHENTICATION_BACKENDS = [
    "prisma_glow.tenancy.lockout.LockoutBackend",  # first: refuses a locked pair before the password
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOCKOUT_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "prisma_glow.audit.context.request_ip"
AXES_LOCKOUT_CALLABLE = "prisma_glow.tenancy.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts while locked neither count nor extend the lock: it ends when the page said it would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ADMIN = False  # owners see their members' locks on the dashboard, scoped
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
# 24-hour times to the minute in the admin's lists ("28 Nov 2026 01:00", not "…, 1 a.m.").
FORMAT_MODULE_PATH = "prisma_glow.formats"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
if DEBUG:
    # WhiteNoise warns on every request handler it builds when STATIC_ROOT does not exist yet
    # (development and tests never run collectstatic); production images create it by collecting.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
# The staff guide the admin serves at /admin/guide/ (prisma_glow/guide.py): a Markdown file, with its
# images in the folder beside it named after it (docs/guide.md → docs/guide/). A checkout and the
# Docker image have it; an installed wheel does not (the page says so): point this at a copy.
PRISMA_GLOW_GUIDE_PATH = Path(os.environ.get("PRISMA_GLOW_GUIDE_PATH") or BASE_DIR / "docs" / "guide.md")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
# Upper bound for one uploaded document (knowledge ingestion); 20 MB by default.
KNOWLEDGE_MAX_UPLOAD_BYTES = env_int("PRISMA_GLOW_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
# Ingestion limits (knowledge/ingest/limits.py): a document over any of them ends `failed` with the
# reason. What a file may unpack to (a .docx is a ZIP; PDF streams are compressed), the compression
# ratio (unpacked / file size), PDF pages, passages made, and seconds to parse and chunk it (a hard
# limit: the parser runs in a child process that is killed when it is over).
KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = env_int("PRISMA_GLOW_INGEST_MAX_UNCOMPRESSED_BYTES", 200 * 1024 * 1024)
KNOWLEDGE_MAX_COMPRESSION_RATIO = env_int("PRISMA_GLOW_INGEST_MAX_COMPRESSION_RATIO", 100)
KNOWLEDGE_MAX_PAGES = env_int("PRISMA_GLOW_INGEST_MAX_PAGES", 2000)
KNOWLEDGE_MAX_CHUNKS = env_int("PRISMA_GLOW_INGEST_MAX_CHUNKS", 20000)
KNOWLEDGE_PROCESSING_TIMEOUT = env_int("PRISMA_GLOW_INGEST_TIMEOUT", 300)
# Memory (address space, RLIMIT_AS) of the child that parses one document: ordinary documents need
# under 250 MB of it; the default leaves room for a large .docx near the unpacked-size limit.
KNOWLEDGE_MAX_MEMORY_BYTES = env_int("PRISMA_GLOW_INGEST_MAX_MEMORY", 2 * 1024 * 1024 * 1024)
# Most members a ZIP archive (.docx) may hold, counted from its end record before it is opened.
KNOWLEDGE_MAX_ARCHIVE_MEMBERS = env_int("PRISMA_GLOW_INGEST_MAX_ARCHIVE_MEMBERS", 5000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2.5 * 1024 * 1024

# The outbound guard (prisma_glow/outbound.py): destinations that may be reached although they are
# private, loopback, link-local… Comma-separated host names, IPs or CIDR networks, each optionally
# with a port ("localhost:11434", "10.0.0.0/8", "[::1]:8080"); an entry with a port allows only that
# port. Empty: only public addresses. HTTP tools and model providers have one list each.
HTTP_TOOL_ALLOWED_HOSTS = env_list("PRISMA_GLOW_HTTP_TOOL_ALLOWED_HOSTS")
PROVIDER_ALLOWED_HOSTS = env_list("PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "prisma_glow.api.authentication.APIKeyAuthentication",
        "prisma_glow.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["prisma_glow.api.permissions.OrganizationRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "prisma_glow.api.pagination.StandardPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "prisma_glow.api.strict.StrictDjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "prisma_glow.api.schema.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "prisma_glow.api.parsers.JSONParser",
        "prisma_glow.api.parsers.FormParser",
        "prisma_glow.api.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "prisma_glow.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["prisma_glow.api.throttling.APIRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Prisma Glow API",
    "DESCRIPTION": "Build, test and run AI agents for a tax, audit and advisory firm. "
    "Authenticate with `Authorization: Api-Key <key>`; every object belongs to the key's organisation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI served from our own static files (CSP allows only 'self'; no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "prisma_glow.api.schema.postprocess_forbid_nul",
        # The events of ?stream=true as components (StreamEvent), named on the text/event-stream answer.
        "agents.api.schema.postprocess_stream_events",
    ],
    # Several models have a "status" / "source" choice set: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "ExecutionStatusEnum": "agents.models.ExecutionStatus",
        "StepStatusEnum": "agents.models.StepStatus",
        "LearningExampleStatusEnum": "agents.models.LearningExampleStatus",
        "DocumentStatusEnum": "knowledge.models.DocumentStatus",
        "ExecutionSourceEnum": "agents.models.ExecutionSource",
        "DocumentSourceEnum": "knowledge.models.DocumentSource",
        "EvalRunStatusEnum": "evaluations.models.RunStatus",
    },
}

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Sessions (prisma_glow/sessions.py): a signed-in session ends after this long without a request, and
# this long after the login whatever happens; the session row and cookie live no longer than that.
PRISMA_GLOW_SESSION_IDLE_MINUTES = env_int("PRISMA_GLOW_SESSION_IDLE_MINUTES", 30)
PRISMA_GLOW_SESSION_MAX_HOURS = env_int("PRISMA_GLOW_SESSION_MAX_HOURS", 12)
SESSION_COOKIE_AGE = PRISMA_GLOW_SESSION_MAX_HOURS * 3600
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not DEBUG:
    # __Host-: the browser accepts the cookie only Secure, from HTTPS, for Path=/ and without a Domain,
    # so no sibling subdomain can plant or overwrite it. Development (plain http://localhost) keeps
    # Django's names.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# Strict Content-Security-Policy: no inline script or style anywhere; everything self-hosted.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # An invitation's link is a secret until used: its token never reaches a log (prisma_glow/logfilters.py).
    "filters": {"redact_invitation_tokens": {"()": "prisma_glow.logfilters.RedactInvitationTokens"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # runserver's request lines, as Django's own logging configures them.
        "server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "server": {"class": "logging.StreamHandler", "formatter": "server"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes: every failed sign-in and lock at WARNING, not each step at INFO.
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["redact_invitation_tokens"]},
        "django.server": {
            "handlers": ["server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["redact_invitation_tokens"],
        },
    },
}
