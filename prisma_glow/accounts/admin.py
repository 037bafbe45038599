"""Mounts the login's code step and the two-step sign-in page on the admin site.

The code step is open to anyone (it reads the pending sign-in from the session); the security page is
the signed-in user's own (``admin_view``: any active staff user, no organisation needed).

The devices (``accounts.models``) have no ModelAdmin on purpose: one would let a superuser read a
user's authenticator key or edit devices outside the audited services; the operator's door is
``manage.py reset_factors``, the user's their own page."""

from django.contrib import admin
from django.urls import path

from prisma_glow.accounts import views

admin.site.register_urls(
    [
        path("login/code/", views.login_code, name="login_code"),
        path("account/security/", admin.site.admin_view(views.account_security), name="account_security"),
    ]
)
