from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Second factors of staff users (no models of its own: django-otp's devices)."""

    name = "prisma_glow.accounts"
    label = "accounts"
    verbose_name = "Accounts"
