"""API authentication: ``Authorization: Api-Key pg_<prefix>.<secret>`` and the admin session."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from prisma_glow.api.throttling import auth_failure_record, auth_failures_exceeded
from prisma_glow.tenancy.models import APIKey

KEYWORD = "Api-Key"
# last_used_at is written at most this often per key, so a busy client does not write on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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

    Expired, revoked and rotated-out keys (their grace period over) get 401 with a reason.
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
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
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
        if key.expires_at is not None and key.expires_at <= now:
            if APIKey.objects.filter(rotated_from=key).exists():
                raise exceptions.AuthenticationFailed(
                    "This API key was rotated and its grace period is over; use the new key."
                )
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return key

    def authenticate_header(self, request) -> str:
        return KEYWORD


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session (the admin's login), with CSRF enforced on unsafe methods."""
