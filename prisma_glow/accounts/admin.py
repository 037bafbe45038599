"""Mounts the login's code step and the two-step sign-in page on the admin site.

The code step is open to anyone (it reads the pending sign-in from the session); the security page is
the signed-in user's own (``admin_view``: any active staff user, no organisation needed).

django-otp's own ModelAdmins are taken off the site: they would let a superuser read any user's
authenticator key (its QR page) and edit devices outside the audited services; the operator's door is
``manage.py reset_factors``, the user's their own page. (This app is listed after django-otp's, so
their admin modules are imported first.)"""

from django.contrib import admin
from django.urls import path
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from prisma_glow.accounts import views

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)

admin.site.register_urls(
    [
        path("login/code/", views.login_code, name="login_code"),
        path("account/security/", admin.site.admin_view(views.account_security), name="account_security"),
    ]
)
