from django.apps import AppConfig
from django.core.checks import Tags, register
from django_otp_webauthn import checks
from django_otp_webauthn.apps import OtpWebauthnConfig


class AccountsConfig(AppConfig):
    """Second factors of staff users: django-otp devices of its own, secrets protected at rest."""

    name = "prisma_glow.accounts"
    label = "accounts"
    verbose_name = "Accounts"


class PasskeyDevicesConfig(OtpWebauthnConfig):
    """django-otp-webauthn (its ``WebAuthnCredential`` device and helper; ``accounts.passkeys``), with
    its system checks except the two about ``OTP_WEBAUTHN_ALLOWED_ORIGINS``: the origins here are by
    default each request's own (``accounts.passkeys.Helper``), so an empty list is the normal case; a
    configured list (``PRISMA_GLOW_PASSKEY_ORIGINS``) is checked for secure origins all the same."""

    def ready(self):
        register(checks.check_settings_supported_cose_algorithms, Tags.security)
        register(checks.check_settings_dangerous_session_backend_used, Tags.security)
        register(checks.check_settings_allowed_origins_misconfigured, Tags.compatibility)
        register(checks.check_settings_rp_related_origins_misconfigured, Tags.compatibility)
        register(checks.check_settings_relying_party, Tags.models)
