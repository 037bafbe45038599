"""API authentication: ``Authorization: Api-Key pg_<prefix>.<secret>`` and the admin session."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions

from prisma_glow import factors
from prisma_glow.api.throttling import auth_failure_record, auth_failures_exceeded
from prisma_glow.tenancy.models import APIKey

KEYWORD = "Api-Key"
# On every response to a request authenticated by a key (errors included): its expiry, and from
# settings.API_KEY_WARN_DAYS before it a sentence saying to rotate (prisma_glow.api.middleware).
EXPIRES_AT_HEADER = "X-API-Key-Expires-At"
EXPIRY_WARNING_HEADER = "X-API-Key-Expiry-Warning"
# last_used_at is written at most this often per key, so a busy client does not write on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class APIKeyExpired(exceptions.AuthenticationFailed):
    """401 ``api_key_expired``: the key was good but its expiry (or rotation grace) has passed."""

    default_code = "api_key_expired"

    def __init__(self, detail: str, *, key: APIKey):
        super().__init__(detail, code=self.default_code)
        self.api_key = key


def record_use(key: APIKey, *, now=None) -> None:
    """Record that ``key`` was used, at most once per ``LAST_USED_RESOLUTION``.

    No query at all while the value read with the key is recent; otherwise one conditional UPDATE
    that writes only if the stored value is still old, so concurrent requests neither race on a
    read-modify-write nor write the same minute twice."""
    now = now or timezone.now()
    threshold = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at >= threshold:
        return
    APIKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=threshold)
    ).update(last_used_at=now)
    key.last_used_at = now


def expires_at_header(key: APIKey) -> str:
    """The key's expiry in ISO 8601 UTC, to the second (``X-API-Key-Expires-At``)."""
    return key.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_key_headers(key: APIKey) -> dict[str, str]:
    """The headers every response to ``key`` carries: its expiry, and a warning near it."""
    headers = {EXPIRES_AT_HEADER: expires_at_header(key)}
    if key.expires_soon:
        days = max(0, (key.expires_at - timezone.now()).days)
        headers[EXPIRY_WARNING_HEADER] = (
            f"This API key expires on {headers[EXPIRES_AT_HEADER]} ("
            + ("in less than a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}")
            + "); rotate it now: an admin of your organisation, signed in, rotates it under API keys in "
            + f"the admin or with POST /api/v1/api-keys/{key.pk}/rotate/ (a key cannot rotate keys)."
        )
    return headers


class APIKeyPrincipal:
    """``request.user`` for a request authenticated by an API key (``request.auth`` is the key)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: APIKey):
        self.api_key = api_key
        self.organization = api_key.organization

    def __str__(self) -> str:
        return f"API key {self.api_key.name}"

    def get_username(self) -> str:
        return str(self)


class APIKeyAuthentication(authentication.BaseAuthentication):
    """Looks the key up by its public prefix and compares the hash in constant time.

    Revoked keys get 401 with a reason; expired and rotated-out keys (their grace period over) 401
    with the code ``api_key_expired``. A key's use is recorded at most once a minute (``record_use``).
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            text = header.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The Authorization header must be ASCII.")
        keyword, _, value = text.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None
        value = value.strip()
        auth_failures_exceeded(request)
        try:
            key = self._verify(value)
        except exceptions.AuthenticationFailed:
            auth_failure_record(request)
            raise
        record_use(key)
        return APIKeyPrincipal(key), key

    @staticmethod
    def _verify(value: str) -> APIKey:
        parts = APIKey.split(value)
        if parts is None:
            raise exceptions.AuthenticationFailed(
                "Malformed API key: expected 'Authorization: Api-Key pg_<prefix>.<secret>'."
            )
        prefix, secret = parts
        key = APIKey.objects.select_related("organization").filter(prefix=prefix).first()
        if key is None or not key.check_secret(secret):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.expires_at <= now:
            if APIKey.objects.filter(rotated_from=key).exists():
                raise APIKeyExpired(
                    "This API key was rotated and its grace period is over; use the new key.", key=key
                )
            raise APIKeyExpired(
                f"This API key expired on {expires_at_header(key)}. Ask an admin of your organisation "
                "for a new key (API keys in the admin, or POST /api/v1/api-keys/).",
                key=key,
            )
        return key

    def authenticate_header(self, request) -> str:
        return KEYWORD


class SecondFactorRequired(exceptions.PermissionDenied):
    """403 ``mfa_required``: factors are required and this session has not checked one."""

    default_code = "mfa_required"


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session (the admin's login), with CSRF enforced on unsafe methods.

    When second factors are required (``PRISMA_GLOW_REQUIRE_MFA``), a session whose user has not
    checked one in it is refused with 403 ``mfa_required`` and a message naming the page to go to
    (the login form never opens such a session; one opened before factors were required can)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not factors.mfa_required() or factors.is_verified(request._request):
            return result
        if factors.has_factor(result[0]):
            message = (
                "Two-step sign-in is required and this session has not given a code: log in again at "
                "/admin/login/ with your authenticator code, then retry."
            )
        else:
            message = (
                "Two-step sign-in is required and your account has none yet: set it up at "
                "/admin/account/security/, then retry."
            )
        raise SecondFactorRequired(message, code=SecondFactorRequired.default_code)
