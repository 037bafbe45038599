"""The invitation's accept page (``/invitation/<token>/``), outside the staff UI: the invitee may have
no account yet.

What it shows depends on the link and on who opens it: an unknown, used, revoked or expired link
says so (404 / 410); a signed-in user with the invitation's address accepts with one button; another
signed-in user is told to sign out (200: nothing accepted); with second factors required (``PRISMA_GLOW_REQUIRE_MFA``), a session
that has not checked one is first sent to sign in with the code, or to enrol one, and back here (``next``);
an anonymous visitor whose address has an account is sent to the
normal login (``?next=`` back here); otherwise the visitor chooses a username and a password
(Django's validators) and is then sent to the normal login, where a required second factor is
enrolled. Every answer is ``Cache-Control: no-store``; the site's ``Referrer-Policy: same-origin``
keeps the link out of requests to other sites (``no-referrer`` would make the browser send
``Origin: null`` with the form, which Django's CSRF check rightly refuses).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.views.decorators.debug import sensitive_post_parameters

from prisma_glow.accounts.middleware import second_factor_first
from prisma_glow.admin.base import add_errors_to_form, validation_messages
from prisma_glow.admin.scoping import SESSION_KEY
from prisma_glow.factors import is_verified, mfa_required
from prisma_glow.tenancy import services
from prisma_glow.tenancy.selectors import invitation_by_token

TEMPLATE = "admin/tenancy/invitation/accept.html"


class SignUpForm(forms.Form):
    """A new account for the invitee; the service applies the rules (unique username, password
    validators) and its errors are shown beside these fields."""

    username = forms.CharField(
        max_length=150,
        help_text="What you will sign in with: letters, digits and @ . + - _ only. Your e-mail address works.",
    )
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )
    password_again = forms.CharField(
        label="Password (again)",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ: type the same password twice.")
        return cleaned


def _page(request, context: dict, *, title: str, status: int = 200):
    response = TemplateResponse(
        request, TEMPLATE, {**admin.site.each_context(request), "title": title, **context}, status=status
    )
    add_never_cache_headers(response)
    return response


def _refused(request, message: str, *, status: int, title: str = "Invitation"):
    return _page(request, {"refusal": message}, title=title, status=status)


@sensitive_post_parameters("password", "password_again")
def invitation_accept_view(request, token: str):
    """The one-time link of an e-mailed invitation (see the module's docstring)."""
    invitation = invitation_by_token(token)
    if invitation is None:
        return _refused(request, services.INVITATION_UNKNOWN_MESSAGE, status=404)
    refusal = services.invitation_refusal(invitation)
    if refusal:
        return _refused(request, refusal, status=410)
    context = {"invitation": invitation, "organization": invitation.organization}
    title = f"Join {invitation.organization.name}"
    user = request.user
    if user.is_authenticated:
        if (user.email or "").casefold() != invitation.email.casefold():
            # 200, not 403: nothing is refused but the wrong account, and a 4xx would make Django log
            # the link (redacted by prisma_glow.logfilters all the same). A POST accepts nothing.
            return _page(request, {**context, "other_user": True}, title=title)
        if mfa_required() and not is_verified(request):
            return _second_factor_first(request)
        if request.method == "POST":
            return _accept(request, token, invitation)
        return _page(request, {**context, "confirm": True}, title=title)
    accounts = get_user_model().objects.filter(email__iexact=invitation.email)
    if accounts.exists():
        if not accounts.filter(is_active=True, is_staff=True).exists():
            # The admin's login takes only active staff accounts; the operator must unlock it first.
            return _page(request, {**context, "cannot_sign_in": True}, title=title)
        messages.info(
            request,
            f"Sign in as {invitation.email}'s account to accept the invitation to {invitation.organization.name}.",
        )
        return redirect(reverse("admin:login") + "?" + urlencode({"next": request.path}))
    form = SignUpForm(request.POST or None, initial={"username": invitation.email})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            new_user = services.invitation_sign_up(
                token=token,
                username=data["username"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
            )
        except ValidationError as exc:
            add_errors_to_form(form, exc)
        else:
            messages.success(
                request,
                f"Your account {new_user.get_username()} is ready and you are a member of "
                f"{invitation.organization.name}. Sign in to start.",
            )
            return redirect("admin:login")
    rules = password_validators_help_texts()
    return _page(
        request,
        {**context, "form": form, "password_rules": rules, "mfa_required": mfa_required()},
        title=title,
    )


def _second_factor_first(request):
    """With second factors required, a session that has not checked one (a password-only sign-in)
    accepts nothing: as on the admin's pages (prisma_glow.accounts.middleware), a user with a factor
    signs in again with the code, one without enrols one; either comes back to this link (``next``)."""
    response = redirect(second_factor_first(request, next_url=request.path, then="accept the invitation"))
    add_never_cache_headers(response)
    return response


def _accept(request, token: str, invitation):
    try:
        membership = services.invitation_accept(token=token, user=request.user)
    except (ValidationError, PermissionDenied) as exc:
        lines = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        return _refused(request, " ".join(lines), status=409)
    request.session[SESSION_KEY] = membership.organization_id
    messages.success(
        request, f"You joined {membership.organization.name} as {membership.get_role_display().lower()}."
    )
    return redirect("admin:index")
