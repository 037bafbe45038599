"""Production settings: ``check --deploy`` is clean, and development needs no configuration."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(["manage.py", *args], env)


def _settings(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the settings module alone (fast) in a clean environment and run ``code`` after it."""
    return _run(["-c", f"from prisma_glow import settings; {code}"], env)


def _production(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "PRISMA_GLOW_VAR_DIR": str(tmp_path),
        **extra,
    }


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    """With DEBUG off, a strong secret key, a host name and a shared cache, the deployment checks
    report nothing and silence nothing (the check does not connect to Redis)."""
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=_production(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_warns_that_rate_limits_count_per_process_without_redis(tmp_path):
    """Without REDIS_URL, production's deployment check fails at WARNING level and says what to set."""
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production(tmp_path))
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "(prisma_glow.W001)" in output
    assert "rate limits count per process" in output and "Set REDIS_URL" in output
    assert "(0 silenced)" in output


def test_development_check_is_quiet_without_redis(tmp_path):
    """`make run` and the tests (DEBUG on, no REDIS_URL) get no warning from `manage.py check`."""
    result = _manage("check", "--fail-level", "WARNING", env={"PRISMA_GLOW_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def _check_output(*, deploy: bool) -> str:
    out, err = StringIO(), StringIO()
    call_command("check", deploy=deploy, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://h:6379/0"}
}


def test_rate_limit_cache_check_is_a_deployment_check(settings, db):
    """The warning comes with --deploy only, for a per-process or dummy cache, not for Redis, and not
    when rate limits are off."""
    # The test environment's in-memory mailer is itself a deployment error (Django's mail.E001).
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
    settings.CACHES = LOCMEM
    assert "prisma_glow.W001" not in _check_output(deploy=False)
    assert "rate limits count per process" in _check_output(deploy=True)
    settings.CACHES = DUMMY
    assert "rate limits never count" in _check_output(deploy=True)
    settings.CACHES = REDIS
    assert "prisma_glow.W001" not in _check_output(deploy=True)
    settings.CACHES = LOCMEM
    settings.RATELIMIT_ENABLE = False
    assert "prisma_glow.W001" not in _check_output(deploy=True)


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    """DEBUG off without DJANGO_SECRET_KEY is a configuration error, not a generated key."""
    result = _settings("pass", env={"DJANGO_DEBUG": "0", "PRISMA_GLOW_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off." in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_development_generates_a_private_secret_key_once(tmp_path):
    """Without DJANGO_SECRET_KEY in development, a key is generated into var/ (mode 0600) and reused."""
    first = _settings("print(settings.SECRET_KEY)", env={"PRISMA_GLOW_VAR_DIR": str(tmp_path)})
    second = _settings("print(settings.SECRET_KEY)", env={"PRISMA_GLOW_VAR_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(key_file.read_text().strip()) >= 50


def test_production_e_mail_is_smtp_from_the_environment_and_never_the_console(tmp_path):
    """Invitations go by SMTP in production (DJANGO_EMAIL_*); the console backend, development's
    default, fails the deployment check (Django's mail.E001)."""
    env = _production(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    result = _settings(
        "m = settings.MAILERS['default']; print(m['BACKEND'], m['OPTIONS']['host'], m['OPTIONS']['port'], "
        "m['OPTIONS']['use_tls'])",
        env={
            **env,
            "DJANGO_EMAIL_HOST": "smtp.firm.example",
            "DJANGO_EMAIL_PORT": "587",
            "DJANGO_EMAIL_USE_TLS": "1",
        },
    )
    assert result.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.firm.example",
        "587",
        "True",
    ]
    console = _manage(
        "check",
        "--deploy",
        env={**env, "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
    )
    assert console.returncode != 0 and "mail.E001" in console.stdout + console.stderr
    development = _settings(
        "print(settings.MAILERS['default']['BACKEND'])", env={"PRISMA_GLOW_VAR_DIR": str(tmp_path)}
    )
    assert development.stdout.strip() == "django.core.mail.backends.console.EmailBackend"
