"""Base classes and helpers shared by every ModelAdmin and custom admin page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.text import capfirst

from prisma_glow import policy
from prisma_glow.admin import stepup
from prisma_glow.admin.scoping import get_admin_access, scope_queryset


class ServiceValidationError(Exception):
    """A service refused a write that the form had accepted; the form is shown again with its errors."""

    def __init__(self, error: ValidationError):
        super().__init__(str(error))
        self.error = error


def validation_messages(error: ValidationError) -> list[str]:
    """Readable lines for a ValidationError, field names in front where there are fields."""
    if hasattr(error, "error_dict"):
        lines = []
        for name, errors in error.message_dict.items():
            prefix = "" if name == NON_FIELD_ERRORS else f"{name}: "
            lines.extend(prefix + message for message in errors)
        return lines
    return list(error.messages)


def add_errors_to_form(form, error: ValidationError) -> None:
    """Attach a service's ValidationError to ``form``: beside its field when there is one."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            target = name if name in form.fields else None
            for item in errors:
                if target is None and name != NON_FIELD_ERRORS:
                    form.add_error(None, ValidationError(f"{name}: {' '.join(item.messages)}"))
                else:
                    form.add_error(target, item)
    else:
        form.add_error(None, error)


def as_validation_error(exc) -> ValidationError:
    """A service's refusal (ValidationError, ConflictError, PermissionDenied, ProtectedError) as a ValidationError."""
    if isinstance(exc, ValidationError):
        return exc
    if isinstance(exc, ProtectedError):
        names = sorted({str(o) for o in exc.protected_objects})[:5]
        return ValidationError(f"It is still in use ({', '.join(names)}); remove those uses first.")
    detail = getattr(exc, "detail", None) or str(exc)
    return ValidationError(str(detail))


def run_service(func, **kwargs):
    """Call a write service from a custom page: ``(result, None)`` or ``(None, ValidationError)``."""
    try:
        return func(**kwargs), None
    except (ValidationError, PermissionDenied, ProtectedError) as exc:
        return None, as_validation_error(exc)


def adopt(obj, result) -> None:
    """Make the admin's form instance the row a service saved (for the admin's log and redirect)."""
    obj.pk = result.pk
    obj.refresh_from_db()


def admin_decide(request, operation: str, obj=None, **context) -> policy.Decision:
    """The policy's answer for the staff user of ``request`` (``prisma_glow.policy.decide``)."""
    return policy.decide(get_admin_access(request), operation, obj, **context)


def admin_require(request, operation: str, obj=None, **context) -> None:
    """PermissionDenied (Django's 403 page) with the policy's reason unless ``operation`` is allowed
    now: a sensitive one needs a fresh second factor, which the door's ``stepup.gate`` asked first."""
    decision = admin_decide(request, operation, obj, **context)
    if not decision:
        raise PermissionDenied(decision.reason)


class OrganizationScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin limited to the request's organisation, with rights from ``prisma_glow.policy``.

    Querysets, foreign-key choices and object lookups are scoped (``scoping.scope_queryset``);
    another organisation's object answers 404. Each admin names its ``policy_resource``: viewing,
    adding, changing and deleting are the operations ``<resource>.view`` / ``.add`` / ``.change`` /
    ``.delete`` unless ``policy_operations`` names others (``{"change": "membership.change_role"}``),
    asked with the object, so the admin and the API answer alike. Subclasses write through the
    domain services in ``save_model`` / ``delete_model``; a ValidationError a service raises there
    is shown beside the form's fields instead of failing the request. A sensitive add, change, delete
    or bulk action (``prisma_glow.policy.STEP_UP``; ``action_operations`` names the bulk actions',
    ``step_up_context`` what the rules read from the form) first asks for a second-factor code on a
    page that carries the POST and then continues it (``prisma_glow.admin.stepup``).
    """

    policy_resource: str = ""
    policy_operations: dict[str, str] = {}
    list_per_page = 50

    # --- scoping ---------------------------------------------------------------------------------
    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.all()
        kwargs["queryset"] = scope_queryset(queryset, request, all_for_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.all()
        kwargs["queryset"] = scope_queryset(queryset, request, all_for_superuser=False)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        # "Agents" rather than Django's "Select agent to change".
        extra_context = {"title": capfirst(self.opts.verbose_name_plural), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    # --- rights ----------------------------------------------------------------------------------
    def operation(self, kind: str) -> str:
        """The policy operation for ``kind`` (view, add, change, delete) on this admin's model."""
        return self.policy_operations.get(kind) or f"{self.policy_resource}.{kind}"

    def allows(self, request, operation: str, obj=None, **context) -> bool:
        """What the page offers (``policy.allows``: a sensitive operation is offered, and its door asks
        for the code when it is used)."""
        return policy.allows(get_admin_access(request), operation, obj, **context)

    def require(self, request, operation: str, obj=None, **context) -> None:
        admin_require(request, operation, obj, **context)

    def has_module_permission(self, request):
        return self.allows(request, self.operation("view"))

    def history_view(self, request, object_id, extra_context=None):
        # The history page shows who changed what and when: a change log, which needs what the audit
        # log needs (a viewer reading an object does not read who edited it).
        self.require(request, "audit.view")
        return super().history_view(request, object_id, extra_context)

    def has_view_permission(self, request, obj=None):
        return self.allows(request, self.operation("view"), obj)

    def has_add_permission(self, request):
        return self.allows(request, self.operation("add"))

    def has_change_permission(self, request, obj=None):
        return self.allows(request, self.operation("change"), obj)

    def has_delete_permission(self, request, obj=None):
        return self.allows(request, self.operation("delete"), obj)

    # --- writes through services ---------------------------------------------------------------
    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        error = getattr(request, "_service_error", None)
        if error is None:
            return form_class

        class ServiceCheckedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                add_errors_to_form(self, error)
                return cleaned

        ServiceCheckedForm.__name__ = form_class.__name__
        return ServiceCheckedForm

    # --- step-up: a sensitive write asks for a code first (prisma_glow.admin.stepup) --------------
    # Bulk actions that perform a sensitive operation: {"activate_selected": "agent.activate"}.
    action_operations: dict[str, str] = {}

    def step_up_context(self, request, obj=None) -> dict:
        """What this admin's sensitive rules read from the posted form (``policy.STEP_UP``: a
        provider's secret typed, a guardrail turned off); the raw POST, so it is known before the
        form is validated. Nothing by default."""
        return {}

    def step_up_gate(self, request, operation: str, obj=None):
        """The code page when ``operation`` needs a fresh second factor (``stepup.gate``), else None."""
        return stepup.gate(request, operation, obj, model_admin=self, **self.step_up_context(request, obj))

    def _posted_object(self, request, object_id):
        try:
            return self.get_object(request, unquote(object_id))
        except Http404:
            return None  # the view answers 404 itself

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            adding = object_id is None or "_saveasnew" in request.POST
            obj = None if adding else self._posted_object(request, object_id)
            if adding or obj is not None:
                page = self.step_up_gate(request, self.operation("add" if adding else "change"), obj)
                if page is not None:
                    return page
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceValidationError as exc:
            # The transaction of the first attempt rolled back; render the form again with the
            # service's errors beside the fields and everything the user typed kept.
            request._service_error = exc.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def call_service(self, func, **kwargs):
        """Call a write service; turn its refusal into a form error (see ``changeform_view``)."""
        try:
            return func(**kwargs)
        except ValidationError as exc:
            raise ServiceValidationError(exc) from exc
        except ProtectedError as exc:
            raise ServiceValidationError(as_validation_error(exc)) from exc

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        # Bulk deletion would bypass the services' refusals (in use, has executions…); objects are
        # deleted one at a time from their page, through the service.
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST":
            obj = self._posted_object(request, object_id)
            if obj is not None:
                page = self.step_up_gate(request, self.operation("delete"), obj)
                if page is not None:
                    return page
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceValidationError as exc:
            for line in validation_messages(exc.error):
                self.message_user(request, line, messages.ERROR)
            return HttpResponseRedirect(request.path.rsplit("/delete/", 1)[0] + "/change/")

    def response_action(self, request, queryset, **kwargs):
        # Every action named in the POST (the menus above and below the list, the change form's
        # prefixed one): a sensitive one asks for the code before Django picks and runs it.
        posted = [
            value
            for name, values in request.POST.lists()
            if name == "action" or name.endswith("-action")
            for value in values
        ]
        for operation in dict.fromkeys(
            self.action_operations[a] for a in posted if a in self.action_operations
        ):
            page = self.step_up_gate(request, operation)
            if page is not None:
                return page
        return super().response_action(request, queryset, **kwargs)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def run_action(self, request, queryset, func, *, verb: str, **kwargs) -> None:
        """Apply a service to each selected object; report successes and refusals as messages."""
        done, refused = 0, []
        for obj in queryset:
            try:
                func(obj, **kwargs)
                done += 1
            except ValidationError as exc:
                refused.append(f"{obj}: {'; '.join(validation_messages(as_validation_error(exc)))}")
        if done:
            self.message_user(request, f"{done} {self.opts.verbose_name_plural} {verb}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)


def render_admin_page(request, template: str, context: dict, *, title: str, model_admin=None):
    """A custom page inside the admin chrome: site context, title, app label for the breadcrumbs."""
    ctx = {**admin.site.each_context(request), "title": title, **context}
    if model_admin is not None:
        ctx.setdefault("opts", model_admin.opts)
        ctx.setdefault("app_label", model_admin.opts.app_label)
    return TemplateResponse(request, template, ctx)
