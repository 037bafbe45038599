from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Second factors of staff users: django-otp devices of its own, secrets protected at rest."""

    name = "prisma_glow.accounts"
    label = "accounts"
    verbose_name = "Accounts"
