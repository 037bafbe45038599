"""The admin login's two steps and the two-step sign-in page (``admin:account_security``).

Password step (``PasswordStepView``, the admin site's ``login``): Django's login form, through
django-axes (a wrong password counts toward the lockout of the username and address; a locked pair
gets the lockout page). A user with a second factor is not logged in: the sign-in waits in the session
(``signin``) and the browser goes to the code step. A user without one is logged in — and, when factors
are required, sent to enrol before anything else (``middleware``).

Code step (``login_code``): a code from the authenticator app or a backup code, checked by
``factors.check_code`` (django-otp throttles each device: every wrong code doubles the wait, and the
page says how long). Wrong codes do not count toward the password lockout: the throttling already
bounds guessing, and the pending sign-in lapses after five minutes, after which the password (which
the lockout counts) is needed again. A good code logs the user in, marks the session verified and
renews its key (``factors.record_check``, which is also a fresh step-up), and is audited. A user with
a passkey may use it instead (``passkeys``: the page carries a challenge for their credentials only,
the browser's answer comes back in a hidden field and is verified before the same completion).

Passkeys are added and removed on the two-step sign-in page: adding is two posts (a name and, unless a
factor was checked within PRISMA_GLOW_STEP_UP_MINUTES, a code; then the browser's answer to the
registration challenge), removing one post; each is audited and ends the user's other sessions.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import django_otp
import segno
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import login as auth_login
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from prisma_glow import factors
from prisma_glow.accounts import passkeys, services, signin
from prisma_glow.accounts.forms import CodeForm, FirstCodeForm, PasskeyForm
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCodeDevice

logger = logging.getLogger("prisma_glow.accounts")


def safe_next(request, default: str | None = None) -> str:
    """The ``next`` of the request (POST, then GET) when it is a URL of this site, else ``default``
    (the dashboard)."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default or reverse("admin:index")


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


def wrong_code_message(user, code: str) -> str:
    wait = factors.wait_seconds(user, code)
    kind = "backup code" if factors.is_backup_code(code) else "code"
    message = f"That {kind} is not right, or was already used."
    if wait:
        message += (
            f" Wait {wait} second{'s' if wait != 1 else ''} before the next try: each wrong code "
            "doubles the wait."
        )
    return message


# --- Password step ----------------------------------------------------------------------------------
class PasswordStepView(LoginView):
    """Django's login view, except that a user with a second factor is sent to the code step."""

    authentication_form = AdminAuthenticationForm
    template_name = "admin/login.html"

    def form_valid(self, form):
        user = form.get_user()
        request = self.request
        next_url = self.get_success_url()
        if factors.has_factor(user):
            signin.start(request, user)
            return HttpResponseRedirect(_with_next("admin:login_code", next_url))
        response = super().form_valid(form)
        request.session[signin.NO_FACTOR] = True
        if factors.mfa_required():
            messages.warning(request, "Two-step sign-in is required here: set it up now to continue.")
            return HttpResponseRedirect(_with_next("admin:account_security", next_url))
        messages.info(
            request,
            "Your account has no second factor: protect it with “Set up two-step sign-in” at the top right.",
        )
        return response


def login(site, request, extra_context=None):
    """The admin site's login page (``AdminSite.login`` with ``PasswordStepView``)."""
    redirect_url = safe_next(request, reverse("admin:index", current_app=site.name))
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(redirect_url)
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        REDIRECT_FIELD_NAME: redirect_url,
        **(extra_context or {}),
    }
    request.current_app = site.name
    return PasswordStepView.as_view(extra_context=context)(request)


# --- Code step ----------------------------------------------------------------------------------------
def _complete_signin(request, user, device, next_url: str):
    """The pending sign-in of ``user`` is complete with ``device`` (a code or a passkey): log in."""
    signin.clear(request)
    auth_login(request, user, backend=user.backend)
    factors.record_check(request, device)
    services.signin_record(user=user, device=device)
    if isinstance(device, BackupCodeDevice):
        left = services.backup_codes_left(user)
        messages.warning(
            request,
            f"You signed in with a backup code: {left} left. If your phone is lost, make new "
            "codes and replace the authenticator app under “Two-step sign-in”.",
        )
    return HttpResponseRedirect(next_url)


@sensitive_post_parameters("code", "passkey")
@never_cache
def login_code(request):
    """The second step of signing in: a code for the pending sign-in (``admin:login_code``)."""
    next_url = safe_next(request)
    user = signin.pending_user(request)
    if user is None:
        if signin.had_pending(request):
            messages.warning(
                request,
                f"Your sign-in waited more than {signin.PENDING_SECONDS // 60} minutes for its code: "
                "enter your password again.",
            )
        signin.clear(request)
        return HttpResponseRedirect(_with_next("admin:login", next_url))
    passkey_error = None
    if request.method == "POST" and request.POST.get("passkey"):
        form = CodeForm(None)
        try:
            device = passkeys.verify(request, user=user, answer=request.POST["passkey"], purpose="signin")
        except passkeys.PasskeyError as error:
            passkey_error = str(error)
        else:
            return _complete_signin(request, user, device, next_url)
    else:
        form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        code = form.cleaned_data["code"]
        device = factors.check_code(user, code)
        if device is not None:
            return _complete_signin(request, user, device, next_url)
        logger.warning("Wrong second-factor code for user %s.", user.pk)
        form.add_error("code", wrong_code_message(user, code))
    site = admin.site
    request.current_app = site.name
    context = {
        **site.each_context(request),
        "title": "Two-step sign-in",
        "subtitle": None,
        "form": form,
        "next": next_url,
        "pending_username": user.get_username(),
        "restart_url": _with_next("admin:login", next_url),
        "passkey_error": passkey_error,
        "passkey_options": passkeys.authentication_options(request, user=user, purpose="signin"),
        "passkey_unavailable": passkeys.unavailable_reason(request) if passkeys.has_passkey(user) else None,
    }
    return TemplateResponse(request, "admin/accounts/login_code.html", context)


# --- The two-step sign-in page ------------------------------------------------------------------------
def _qr_data_uri(device: AuthenticatorDevice) -> str:
    """The enrolment QR code as an SVG ``data:`` URI for an ``<img>`` (the CSP's ``img-src`` allows
    ``data:``; no markup of ours is built from it, nor any inline style)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _codes_page(request, *, codes: list[str], next_url: str, title: str):
    context = {
        **admin.site.each_context(request),
        "title": title,
        "subtitle": None,
        "codes": codes,
        "next": next_url,
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "admin/accounts/backup_codes.html", context)


@sensitive_post_parameters(
    "code", "confirm-code", "regenerate-code", "remove-code", "replace-code", "passkey-code", "passkey"
)
@never_cache
def account_security(request):
    """A staff user's own second factors (``/admin/account/security/``): enrol an authenticator app,
    make new backup codes, replace the app, remove them (not while they are required). Every change
    but the first enrolment needs a code, and each ends the user's other sessions."""
    user = request.user
    next_url = safe_next(request, reverse("admin:account_security"))
    enrolled = factors.has_factor(user)
    forms = {
        "confirm": FirstCodeForm(prefix="confirm"),
        "regenerate": CodeForm(prefix="regenerate"),
        "remove": CodeForm(prefix="remove"),
        "replace": CodeForm(prefix="replace"),
        "passkey": PasskeyForm(prefix="passkey"),
    }
    creation_options = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action in PASSKEY_ACTIONS:
            response, creation_options = _passkey_action(
                request, action=action, forms=forms, next_url=next_url
            )
            if response is not None:
                return response
            action = ""
        if action == "cancel":
            services.enrolment_cancel(user=user)
            messages.info(
                request, "The new authenticator app was not set up; the one you have keeps working."
            )
            return HttpResponseRedirect(reverse("admin:account_security"))
        if action and action not in forms:
            messages.error(request, "Choose what to do with the buttons of this page.")
            return HttpResponseRedirect(reverse("admin:account_security"))
        form = forms[action] = type(forms[action])(request.POST, prefix=action) if action else None
        if form is not None and form.is_valid():
            code = form.cleaned_data["code"]
            if action == "confirm":
                device = (
                    AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
                )
                if device is None:
                    messages.error(request, "This enrolment is over: start again below.")
                    return HttpResponseRedirect(reverse("admin:account_security"))
                try:
                    codes = services.totp_confirm(user=user, device=device, code=code, keep=request)
                except ValidationError as error:
                    form.add_error("code", error.message_dict.get("code", error.messages))
                else:
                    factors.record_check(request, device)
                    request.session.pop(signin.NO_FACTOR, None)
                    messages.success(
                        request, "Two-step sign-in is on: you will give a code at every sign-in."
                    )
                    return _codes_page(request, codes=codes, next_url=next_url, title="Your backup codes")
            else:
                # A step-up like any other: throttled, audited (right and wrong codes), session renewed.
                checked = factors.step_up(
                    request, code, door="account_security", operation=f"factor.{action}"
                )
                if not checked:
                    form.add_error("code", wrong_code_message(user, code))
                else:
                    response = _act(request, action=action, next_url=next_url)
                    if response is not None:
                        return response
    device = None
    if not enrolled or AuthenticatorDevice.objects.filter(user=user, confirmed=False).exists():
        device = services.totp_enrolment(user=user)
    context = {
        **admin.site.each_context(request),
        "title": "Two-step sign-in",
        "subtitle": None,
        "enrolled": enrolled,
        "required": factors.mfa_required(),
        "backup_codes_left": services.backup_codes_left(user) if enrolled else 0,
        "authenticators": list(AuthenticatorDevice.objects.filter(user=user, confirmed=True).order_by("pk")),
        "enrolment": device,
        "qr_uri": _qr_data_uri(device) if device else "",
        "secret": _grouped(services.secret_of(device)) if device else "",
        "forms": forms,
        "next": next_url,
        "passkeys": list(passkeys.credentials_of(user)),
        "passkey_unavailable": passkeys.unavailable_reason(request),
        "passkey_creation": creation_options,
        "passkey_name": passkeys.waiting_registration_name(request, user=user) if creation_options else "",
        "fresh": factors.checked_recently(request),
        "minutes": settings.PRISMA_GLOW_STEP_UP_MINUTES,
    }
    if factors.mfa_required() and not factors.is_verified(request):
        # Enrolment comes before anything else: no links to pages that would send the user back here.
        context["is_nav_sidebar_enabled"] = False
    request.current_app = admin.site.name
    return TemplateResponse(request, "admin/accounts/security.html", context)


def _act(request, *, action: str, next_url: str):
    """A change to existing factors, once a code was accepted; None to show the page again."""
    user = request.user
    if action == "regenerate":
        codes = services.backup_codes_regenerate(user=user, keep=request)
        messages.success(request, "New backup codes made: the old ones no longer work.")
        return _codes_page(request, codes=codes, next_url=next_url, title="Your new backup codes")
    if action == "replace":
        services.totp_enrolment(user=user, fresh=True)
        messages.info(
            request,
            "Scan the new QR code with the new app and confirm with its code: the current app keeps "
            "working until then.",
        )
        return HttpResponseRedirect(reverse("admin:account_security") + "#enrol")
    try:
        services.factors_remove(user=user, keep=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("admin:account_security"))
    request.session.pop(factors.CHECKED_AT, None)
    request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    request.session[signin.NO_FACTOR] = True
    messages.success(request, "Two-step sign-in is off: your password alone now signs you in.")
    return HttpResponseRedirect(reverse("admin:account_security"))


# --- Passkeys on the two-step sign-in page ------------------------------------------------------------
PASSKEY_ACTIONS = ("passkey_begin", "passkey_finish", "passkey_remove")


def _passkey_action(request, *, action: str, forms: dict, next_url: str):
    """(a response, None) when done, or (None, registration options to show) / (None, None) to show the
    page again (with the errors in ``forms["passkey"]`` or a message)."""
    user = request.user
    here = reverse("admin:account_security")
    if reason := passkeys.unavailable_reason(request):
        messages.error(request, reason)
        return HttpResponseRedirect(here), None
    if action == "passkey_finish":
        try:
            device = passkeys.register(request, user=user, answer=request.POST.get("passkey", ""))
        except passkeys.PasskeyError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(here), None
        codes = services.passkey_registered(user=user, device=device, keep=request)
        if codes:  # the first factor: the session counts as verified, as after a first code
            factors.record_check(request, device)
            request.session.pop(signin.NO_FACTOR, None)
            messages.success(request, f"Passkey “{device.name}” added: two-step sign-in is on.")
            return _codes_page(request, codes=codes, next_url=next_url, title="Your backup codes"), None
        messages.success(request, f"Passkey “{device.name}” added: use it at your next sign-in.")
        return HttpResponseRedirect(here), None
    form = forms["passkey"] = PasskeyForm(request.POST, prefix="passkey")
    enrolled = factors.has_factor(user)
    if not form.is_valid() and (not enrolled or factors.checked_recently(request)):
        form.errors.pop("code", None)  # no code asked: none enrolled, or one checked just now
    if form.errors:
        if action == "passkey_remove":
            messages.error(
                request, "Type a code from your authenticator app (or a backup code) to remove a passkey."
            )
            return HttpResponseRedirect(here), None
        return None, None
    if enrolled and not factors.checked_recently(request):
        code = form.cleaned_data.get("code", "")
        device = factors.check_code(user, code)
        if device is None:
            if action == "passkey_remove":
                messages.error(request, wrong_code_message(user, code) + " The passkey was not removed.")
                return HttpResponseRedirect(here), None
            form.add_error("code", wrong_code_message(user, code))
            return None, None
        factors.record_check(request, device)
    if action == "passkey_begin":
        return None, passkeys.registration_options(request, user=user, name=form.cleaned_data.get("name", ""))
    try:
        name = services.passkey_remove(user=user, device_id=form.cleaned_data.get("device"), keep=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(here), None
    messages.success(request, f"Passkey “{name}” removed.")
    return HttpResponseRedirect(here), None
