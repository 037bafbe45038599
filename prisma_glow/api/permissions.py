"""The API's door onto ``prisma_glow.policy``: each viewset says which operation each action performs.

A viewset names its resource and, for actions beyond the standard ones, the operation::

    policy_resource = "agent"                     # list/retrieve → agent.view, create → agent.add,
                                                  # update/partial_update → agent.change, destroy → agent.delete
    operations = {"execute": "agent.execute", "activate": "agent.change"}

The permission class asks the policy before the action runs (with no object) and again for the object
(``get_object``), so object rules apply (built-in tools are read-only). Rules that depend on what is
asked (the role a member is given, a provider's secret set) are checked by the action with
``require(...)``. A refusal is a 403 whose ``code`` is the policy's: ``permission_denied``,
``session_required`` (never an API key) or ``step_up_required`` (the message says how:
``POST /api/v1/auth/step-up/``). An action no
declaration covers is refused. Objects of another organisation never reach this check: the scoped
queryset answers 404 first.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from rest_framework import exceptions, permissions

from prisma_glow import factors, policy
from prisma_glow.api.tenancy import get_access

STANDARD_ACTIONS = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


def operation_for(view, action: str | None) -> str | None:
    """The policy operation ``view`` performs for ``action`` (a viewset action, or an HTTP method in
    lower case for a plain API view), or None when nothing declares one."""
    declared = getattr(view, "operations", {}) or {}
    if action in declared:
        return declared[action]
    resource = getattr(view, "policy_resource", None)
    if resource and action in STANDARD_ACTIONS:
        return f"{resource}.{STANDARD_ACTIONS[action]}"
    return None


UNROUTED = "(method not allowed)"


def request_operation(view, request) -> str | None:
    """The operation of this request; ``UNROUTED`` when no action answers its method (DRF answers 405
    without running anything)."""
    method = request.method.lower()
    if hasattr(view, "action_map"):  # a viewset
        action = view.action
        if action is None and method == "options":
            return operation_for(view, "list") or operation_for(view, "retrieve")
        if action is None:
            return UNROUTED
        return operation_for(view, action)
    if method in ("head", "options"):
        method = "get"
    if not hasattr(view, method):
        return UNROUTED
    return operation_for(view, method)


STEP_UP_ROUTE = "POST /api/v1/auth/step-up/"


def refusal_message(request, decision: policy.Decision) -> str:
    """The 403's message: the policy's reason, and for a step-up how to give the code through the API."""
    if decision.code != policy.STEP_UP_REQUIRED:
        return decision.reason
    minutes = settings.PRISMA_GLOW_STEP_UP_MINUTES
    if factors.has_factor(request.user):
        return (
            f"{decision.reason} Send a code from your authenticator app (or a backup code) with "
            f'{STEP_UP_ROUTE} {{"code": "123456"}}, then repeat this request; the check lasts {minutes} '
            "minutes."
        )
    return (
        f"{decision.reason} You have no second factor yet: enrol one under Account security in the admin "
        f"({account_security_url()}), then send its code with {STEP_UP_ROUTE} and repeat this request."
    )


def account_security_url() -> str:
    """Where a user enrols a second factor (the admin's account security page, by its name)."""
    try:
        return reverse("admin:account_security")
    except NoReverseMatch:
        return reverse("admin:index")


def refusal(request, decision: policy.Decision) -> exceptions.PermissionDenied:
    """The API's 403 for a refused decision: its message and its code (``decision.code``)."""
    return exceptions.PermissionDenied(refusal_message(request, decision), code=decision.code)


def require(request, operation: str, obj=None, **context) -> None:
    """Raise the API's 403 with the policy's reason and code unless the caller may perform
    ``operation`` now (a sensitive one: after a fresh second-factor check, ``step_up_required``)."""
    decision = policy.decide(get_access(request), operation, obj, **context)
    if not decision:
        raise refusal(request, decision)


class OrganizationRolePermission(permissions.BasePermission):
    """Authenticated, acting for an organisation, and allowed the view's operation by the policy."""

    message = "Your role or API key scope does not allow this."
    code = policy.PERMISSION_DENIED

    def _decide(self, request, view, obj=None) -> bool:
        operation = request_operation(view, request)
        if operation is None:
            self.message = "This action declares no permission; it is refused."
            return False
        if operation == UNROUTED:
            return True
        decision = policy.decide(get_access(request), operation, obj)
        if not decision:
            # DRF raises PermissionDenied(self.message, code=self.code).
            self.message = refusal_message(request, decision)
            self.code = decision.code
        return decision.allowed

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        return self._decide(request, view)

    def has_object_permission(self, request, view, obj) -> bool:
        return self._decide(request, view, obj)
