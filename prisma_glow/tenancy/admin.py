"""Staff pages for the organisation: its settings, members and API keys (admins and owners).

Writes go through ``prisma_glow.tenancy.services``. An API key's secret is shown once, on the page
that answers its creation or rotation, and never again.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from prisma_glow import policy
from prisma_glow.admin import stepup
from prisma_glow.admin.base import (
    OrganizationScopedAdmin,
    ServiceValidationError,
    admin_decide,
    adopt,
    render_admin_page,
    run_service,
    validation_messages,
)
from prisma_glow.admin.refusal import refusal_page
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.admin.stepup import requires_step_up
from prisma_glow.tenancy import lockout, services
from prisma_glow.tenancy.models import APIKey, Invitation, Membership, Organization, Role, Scope

# --- Organisations ----------------------------------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    """The organisation's name, slug and currency (owners change them, like the API); superusers see
    and create every organisation."""

    policy_resource = "organization"
    policy_operations = {"change": "organization.update"}
    list_display = ["name", "slug", "currency", "one_person_activation", "member_count", "created_at"]
    fields = ["name", "slug", "currency", "one_person_activation"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(members=Count("memberships"))

    @admin.display(description="Members", ordering="members")
    def member_count(self, obj):
        return obj.members

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def step_up_context(self, request, obj=None) -> dict:
        # Turning one-person activation on or off asks for a fresh code (policy.STEP_UP); an
        # unchecked checkbox is simply absent from the POST.
        return {"one_person_activation": "one_person_activation" in request.POST}

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("name", "slug", "currency") if k in form.cleaned_data}
        if change:
            data["one_person_activation"] = form.cleaned_data["one_person_activation"]
            self.require(request, "organization.update", obj)
            result = self.call_service(
                services.organization_update,
                organization=obj,
                actor=request.user,
                **data,
            )
        else:
            result = self.call_service(
                services.organization_create,
                actor=request.user,
                owner=request.user,
                **data,
            )
        adopt(obj, result)


# --- Members ----------------------------------------------------------------------------------


class RoleChoicesForm(forms.ModelForm):
    """Offers only the roles the signed-in user may give (``policy.grantable_roles``); a posted role
    outside them is refused as an invalid choice."""

    grantable_roles: list[str] = list(Role.values)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "role" in self.fields:
            self.fields["role"].choices = [
                (v, label) for v, label in Role.choices if v in self.grantable_roles
            ]


class MembershipChangeForm(RoleChoicesForm):
    class Meta:
        model = Membership
        fields = ["role"]


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    """Who belongs to the organisation, and with which role. Admins manage members; only owners give,
    change or take away the owner role, or touch an owner's membership (``prisma_glow.policy``)."""

    policy_resource = "membership"
    policy_operations = {
        "add": "membership.add",
        "change": "membership.change_role",
        "delete": "membership.remove",
    }
    list_display = ["user", "email", "role_badge", "organization", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user", "organization"]

    @admin.display(description="E-mail")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="Role", ordering="role")
    def role_badge(self, obj):
        return format_html('<span class="pg-badge pg-badge-kind">{}</span>', obj.get_role_display())

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = type(
            MembershipChangeForm.__name__,
            (MembershipChangeForm,),
            {"grantable_roles": policy.grantable_roles(get_admin_access(request))},
        )
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["member", "role"]

    def get_readonly_fields(self, request, obj=None):
        return ["member"]

    @admin.display(description="User")
    def member(self, obj):
        """Username, name and e-mail address as text: the user's own page (auth) is for site
        superusers, so a link there would lead every other member to a refusal."""
        user = obj.user
        name = user.get_full_name()
        label = f"{user.get_username()} ({name})" if name else user.get_username()
        if user.email:
            label = f"{label} — {user.email}"
        return label

    def add_view(self, request, form_url="", extra_context=None):
        """Colleagues join through an invitation they accept (their consent), never by being attached."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        return redirect("admin:tenancy_invitation_add")

    def step_up_context(self, request, obj=None) -> dict:
        # The role asked for: a role the user may not give is refused as such, not asked a code for.
        return {"role": request.POST["role"]} if request.POST.get("role") in Role.values else {}

    def save_model(self, request, obj, form, change):
        # The form offers only grantable roles; the policy is asked again with what is saved.
        before = Membership.objects.get(pk=obj.pk)
        self.require(request, "membership.change_role", before, role=form.cleaned_data["role"])
        result = self.call_service(
            services.membership_update,
            membership=obj,
            actor=request.user,
            role=form.cleaned_data["role"],
            access=get_admin_access(request),
        )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.require(request, "membership.remove", obj)
        self.call_service(
            services.membership_remove,
            membership=obj,
            actor=request.user,
            access=get_admin_access(request),
        )

    def unlock_login_view(self, request, membership_id):
        """Lift a member's sign-in lock (POST, owners; from the dashboard's lockout panel): one
        address's when ``ip_address`` is given, every address's otherwise."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        decision = admin_decide(request, "membership.unlock_login")
        if not decision:
            return refusal_page(request, decision.reason, model_admin=self)
        membership = scoped_get(Membership.objects.select_related("user"), request, pk=membership_id)
        username = membership.user.get_username()
        removed, error = run_service(
            lockout.login_unlock,
            username=username,
            ip_address=request.POST.get("ip_address"),
            actor=request.user,
            organization=membership.organization,
        )
        if error is not None:
            for line in validation_messages(error):
                messages.error(request, line)
        elif removed:
            messages.success(request, f"{username} can sign in again.")
        else:
            messages.info(request, f"{username} was not locked out.")
        return redirect("admin:index")

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "<int:membership_id>/unlock-login/",
                view(self.unlock_login_view),
                name="tenancy_membership_unlock_login",
            ),
        ]
        return custom + super().get_urls()


# --- Invitations ------------------------------------------------------------------------------


class InvitationForm(RoleChoicesForm):
    """E-mail address and role; the service decides the rest (an open invitation to the same address
    is replaced, so the model's one-open-invitation constraint is not checked here)."""

    class Meta:
        model = Invitation
        fields = ["email", "role"]
        help_texts = {
            "email": "The colleague's address. The same answer follows whether or not it has an account.",
        }

    def validate_unique(self):
        pass  # services.invitation_create replaces an open invitation to the same address


def invitation_state_badge(invitation: Invitation) -> str:
    return format_html('<span class="pg-badge pg-badge-{}">{}</span>', invitation.state, invitation.state)


@admin.register(Invitation)
class InvitationAdmin(OrganizationScopedAdmin):
    """Invitations of the organisation: owners and admins invite (``membership.add``: only owners
    invite owners), see them and revoke open ones. Nobody edits or deletes one: the record stays."""

    policy_resource = "membership"
    policy_operations = {
        "view": "invitation.view",
        "add": "membership.add",
        "change": "membership.add",
        "delete": "membership.add",
    }
    form = InvitationForm
    list_display = ["email", "role_badge", "state_badge", "invited_by", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    list_select_related = ["invited_by"]

    @admin.display(description="Role", ordering="role")
    def role_badge(self, obj):
        return format_html('<span class="pg-badge pg-badge-kind">{}</span>', obj.get_role_display())

    @admin.display(description="State")
    def state_badge(self, obj):
        return invitation_state_badge(obj)

    def has_change_permission(self, request, obj=None):
        return False  # invitations are revoked and sent again, never edited

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record stays for the audit trail

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = type(
            InvitationForm.__name__,
            (InvitationForm,),
            {"grantable_roles": policy.grantable_roles(get_admin_access(request))},
        )
        return super().get_form(request, obj, change, **kwargs)

    def step_up_context(self, request, obj=None) -> dict:
        # The role invited to: inviting an owner is refused to an admin as such, before any code.
        return {"role": request.POST["role"]} if request.POST.get("role") in Role.values else {}

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {
            "title": "Invite a colleague",
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        self.require(request, "membership.add", role=form.cleaned_data["role"])
        try:
            invitation, link = self.call_service(
                services.invitation_create,
                organization=get_admin_access(request).organization,
                actor=request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                site_url=request.build_absolute_uri("/"),
                access=get_admin_access(request),
            )
        except PermissionDenied as exc:
            raise ServiceValidationError(ValidationError(str(exc))) from exc
        adopt(obj, invitation)
        request._invitation_link = link

    def response_add(self, request, obj, post_url_continue=None):
        """The same page whether or not the address has an account; the link only while e-mail is
        printed by the server (development)."""
        context = {
            "invitation": obj,
            "link": request._invitation_link if services.console_email() else "",
        }
        response = render_admin_page(
            request, "admin/tenancy/invitation/sent.html", context, title="Invitation sent", model_admin=self
        )
        response["Cache-Control"] = "no-store"
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Reading an invitation is not inviting: no fresh code (revoking it, below, asks for one).
        self.require(request, "invitation.view")
        invitation = scoped_get(
            Invitation.objects.select_related("invited_by", "accepted_by"), request, pk=object_id
        )
        context = {
            "invitation": invitation,
            "state_badge": invitation_state_badge(invitation),
            "can_revoke": invitation.accepted_at is None
            and invitation.revoked_at is None
            and self.allows(request, "membership.add", invitation, role=invitation.role),
        }
        return render_admin_page(
            request, "admin/tenancy/invitation/detail.html", context, title=str(invitation), model_admin=self
        )

    def revoke_view(self, request, invitation_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.allows(request, "membership.add"):
            return refusal_page(request, admin_decide(request, "membership.add").reason, model_admin=self)
        invitation = scoped_get(Invitation.objects.all(), request, pk=invitation_id)
        # The role rule first (only owners revoke an owner's invitation), then a fresh code.
        decision = admin_decide(request, "membership.add", invitation, role=invitation.role)
        if not decision and decision.code != policy.STEP_UP_REQUIRED:
            return refusal_page(request, decision.reason, model_admin=self)
        page = stepup.gate(request, "membership.add", invitation, model_admin=self, role=invitation.role)
        if page is not None:
            return page
        _, error = run_service(
            services.invitation_revoke,
            invitation=invitation,
            actor=request.user,
            access=get_admin_access(request),
        )
        if error is None:
            messages.success(
                request, f"The invitation to {invitation.email} was revoked; its link no longer works."
            )
        else:
            for line in validation_messages(error):
                messages.error(request, line)
        return redirect("admin:tenancy_invitation_change", invitation.pk)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("<int:invitation_id>/revoke/", view(self.revoke_view), name="tenancy_invitation_revoke"),
        ]
        return custom + super().get_urls()


def lockout_panel(request, organization) -> dict:
    """The dashboard's "Locked sign-ins" panel: the members' current locks, for owners only."""
    if not admin_decide(request, "membership.unlock_login"):
        return {"lockout_locks": []}
    return {"lockout_locks": lockout.locked_logins(organization=organization)}


admin.site.register_dashboard_panel(
    "lockout", template="admin/tenancy/lockout_panel.html", context=lockout_panel, order=5
)


# --- API keys ---------------------------------------------------------------------------------


class APIKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="read: GET; write: change objects; execute: run agents; admin: everything.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = APIKey
        fields = ["name", "scopes", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].help_text = expiry_help_text()

    def clean_expires_at(self):
        return clean_expiry(self.cleaned_data.get("expires_at"))


def expiry_help_text() -> str:
    return (
        f"Blank: {settings.API_KEY_MAX_DAYS} days from now, the longest a key may last. "
        "The key stops working at this time; rotate it before."
    )


def clean_expiry(value):
    """The service's rule (``services.api_key_expiry``), shown on the field."""
    try:
        services.api_key_expiry(value)
    except ValidationError as exc:
        raise forms.ValidationError(exc.message_dict["expires_at"])
    return value


class RotateForm(forms.Form):
    grace_minutes = forms.IntegerField(
        min_value=0,
        max_value=60 * 24 * 30,
        initial=60,
        label="Grace period (minutes)",
        help_text="How long the old key keeps working. 0: it stops at once.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="New key expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].help_text = expiry_help_text()

    def clean_expires_at(self):
        return clean_expiry(self.cleaned_data.get("expires_at"))


def key_state(key: APIKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at <= timezone.now():
        return "expired"
    if key.expires_soon:
        return "expires-soon"
    return "usable"


@admin.register(APIKey)
class APIKeyAdmin(OrganizationScopedAdmin):
    """API keys: created with the secret shown once, rotated with a grace period, revoked."""

    policy_resource = "api_key"
    policy_operations = {"add": "api_key.create", "change": "api_key.rotate", "delete": "api_key.revoke"}
    form = APIKeyCreateForm
    list_display = [
        "name",
        "key_prefix",
        "scope_list",
        "state_badge",
        "last_used_at",
        "expires_at",
        "created_by",
    ]
    list_filter = ["created_at"]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]

    @admin.display(description="Key")
    def key_prefix(self, obj):
        return format_html("<code>pg_{}…</code>", obj.prefix)

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="State")
    def state_badge(self, obj):
        state = key_state(obj)
        return format_html('<span class="pg-badge pg-badge-{}">{}</span>', state, state)

    def has_change_permission(self, request, obj=None):
        return False  # keys are rotated or revoked (their own pages), never edited

    def save_model(self, request, obj, form, change):
        key, full_key = self.call_service(
            services.api_key_create,
            organization=get_admin_access(request).organization,
            actor=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
        adopt(obj, key)
        request._new_api_key = (key, full_key)

    def add_view(self, request, form_url="", extra_context=None):
        # Creating a key always ends on the page that shows its secret once.
        extra_context = {
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        key, full_key = request._new_api_key
        return self._secret_page(request, key, full_key, created=True)

    def _secret_page(self, request, key, full_key, *, created):
        context = {"key": key, "full_key": full_key, "created": created}
        response = render_admin_page(
            request,
            "admin/tenancy/apikey/secret.html",
            context,
            title=f"API key “{key.name}”",
            model_admin=self,
        )
        response["Cache-Control"] = "no-store"
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.require(request, "api_key.view")
        key = scoped_get(APIKey.objects.select_related("created_by", "rotated_from"), request, pk=object_id)
        successor = APIKey.objects.filter(rotated_from=key).first()
        context = {
            "key": key,
            "state": key_state(key),
            "successor": successor,
            "rotate_form": RotateForm(),
            "can_write": self.allows(request, "api_key.rotate", key),
        }
        return render_admin_page(
            request, "admin/tenancy/apikey/detail.html", context, title=str(key), model_admin=self
        )

    @requires_step_up("api_key.rotate")
    def rotate_view(self, request, key_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self.require(request, "api_key.rotate")
        key = scoped_get(APIKey.objects.all(), request, pk=key_id)
        form = RotateForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("admin:tenancy_apikey_change", key.pk)
        result, error = run_service(
            services.api_key_rotate,
            api_key=key,
            actor=request.user,
            grace=dt.timedelta(minutes=form.cleaned_data["grace_minutes"]),
            expires_at=form.cleaned_data.get("expires_at"),
        )
        if error is not None:
            for line in validation_messages(error):
                messages.error(request, line)
            return redirect("admin:tenancy_apikey_change", key.pk)
        new_key, full_key = result
        return self._secret_page(request, new_key, full_key, created=False)

    @requires_step_up("api_key.revoke")
    def revoke_view(self, request, key_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self.require(request, "api_key.revoke")
        key = scoped_get(APIKey.objects.all(), request, pk=key_id)
        _, error = run_service(services.api_key_revoke, api_key=key, actor=request.user)
        if error is None:
            messages.success(request, f"The key “{key.name}” was revoked; it no longer authenticates.")
        else:
            for line in validation_messages(error):
                messages.error(request, line)
        return redirect("admin:tenancy_apikey_change", key.pk)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("<int:key_id>/rotate/", view(self.rotate_view), name="tenancy_apikey_rotate"),
            path("<int:key_id>/revoke/", view(self.revoke_view), name="tenancy_apikey_revoke"),
        ]
        return custom + super().get_urls()

    def delete_model(self, request, obj):
        self.call_service(services.api_key_revoke, api_key=obj, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the record stays for the audit trail


# --- What the tenancy app adds to the dashboard ------------------------------------------------

EXPIRING_KEYS_SHOWN = 10


def expiring_keys_panel(request, organization) -> dict:
    """Usable keys within ``settings.API_KEY_WARN_DAYS`` of expiry, for those who may read keys."""
    if not policy.decide(get_admin_access(request), "api_key.view"):
        return {"expiring_keys": None}
    keys = APIKey.objects.filter(organization=organization).expiring_soon()
    return {
        "expiring_keys": list(keys[:EXPIRING_KEYS_SHOWN]),
        "expiring_keys_count": keys.count(),
        "expiring_keys_warn_days": settings.API_KEY_WARN_DAYS,
    }


admin.site.register_dashboard_panel(
    "api_keys_expiring",
    template="admin/tenancy/apikey/dashboard_panel.html",
    context=expiring_keys_panel,
    order=20,
)


# --- Users (site administration) ---------------------------------------------------------------


class UserAdmin(DjangoUserAdmin):
    """Django's own user pages, for superusers only: every write (adding a user, changing one — making
    a superuser, staff or inactive —, setting a password, deleting one or several) is the policy's
    ``user.manage``, which needs a fresh second factor: the page asks for a code, then carries on."""

    operation = "user.manage"

    def _gate(self, request):
        if request.method != "POST":
            return None
        decision = policy.decide(get_admin_access(request), self.operation)
        if not decision and decision.code != policy.STEP_UP_REQUIRED:
            return refusal_page(request, decision.reason, model_admin=self)
        return stepup.gate(request, self.operation, model_admin=self)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        page = self._gate(request)
        return (
            page if page is not None else super().changeform_view(request, object_id, form_url, extra_context)
        )

    def delete_view(self, request, object_id, extra_context=None):
        page = self._gate(request)
        return page if page is not None else super().delete_view(request, object_id, extra_context)

    def user_change_password(self, request, id, form_url=""):
        page = self._gate(request)
        return page if page is not None else super().user_change_password(request, id, form_url)

    def response_action(self, request, queryset, **kwargs):
        # Bulk deletion (Django's delete_selected): its confirmation and its final POST.
        page = self._gate(request)
        return page if page is not None else super().response_action(request, queryset, **kwargs)


User = get_user_model()
admin.site.unregister(User)
admin.site.register(User, UserAdmin)
