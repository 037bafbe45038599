"""The staff UI and the API answer alike: ``prisma_glow.policy.DOORS`` classifies every page and route,
and each door is tried for each role through both, with real requests."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from prisma_glow import policy
from prisma_glow.api.permissions import operation_for
from tests.factories import InvitationFactory, MembershipFactory, UserFactory
from tests.support.admin import World

ROLES = ["viewer", "editor", "admin", "owner"]
METHODS = {"list": "get", "retrieve": "get", "create": "post", "update": "put", "partial_update": "patch"}
METHODS["destroy"] = "delete"


# --- Walking the URL configuration -----------------------------------------------------------------
def _patterns(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), (f"{namespace}:" if namespace else "") + str(entry.name), entry


def admin_url_names() -> set[str]:
    """Every named staff-UI URL (Django's unnamed redirects to ``…/change/`` excepted)."""
    return {
        name
        for route, name, _ in _patterns(get_resolver().url_patterns)
        if route.startswith("admin/") and not name.endswith(":None") and name != "None"
    }


def api_routes() -> dict[tuple[str, str], tuple[type, str]]:
    """Every (route name, action) of ``/api/v1/`` → (view class, HTTP method)."""
    routes = {}
    for route, name, entry in _patterns(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        callback = entry.callback
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        actions = getattr(callback, "actions", None)
        if actions:
            for method, action in actions.items():
                routes[(name, action)] = (view_class, method)
        else:
            for method in ("get", "post", "put", "patch", "delete"):
                if view_class is not None and hasattr(view_class, method):
                    routes[(name, method)] = (view_class, method)
    return routes


# --- The table is complete and true to the code -------------------------------------------------------
def test_every_admin_page_is_classified():
    """A new staff page that DOORS and ADMIN_ONLY do not name fails here; so does a stale entry."""
    names = admin_url_names()
    classified = {door.admin for door in policy.DOORS} | set(policy.ADMIN_ONLY)
    assert names - classified == set(), "admin pages missing from prisma_glow.policy.DOORS / ADMIN_ONLY"
    assert classified - names == set(), "entries of DOORS / ADMIN_ONLY that name no admin page"
    assert not {door.admin for door in policy.DOORS} & set(policy.ADMIN_ONLY)


def test_every_api_route_is_classified_and_declares_its_operation():
    """A new API route or action that DOORS and API_ONLY do not name fails here; every viewset action
    declares an operation of the policy (an undeclared one would be refused)."""
    routes = api_routes()
    classified = {door.api for door in policy.DOORS if door.api} | set(policy.API_ONLY)
    assert set(routes) - classified == set(), "API routes missing from prisma_glow.policy.DOORS / API_ONLY"
    assert classified - set(routes) == set(), "entries of DOORS / API_ONLY that name no API route"
    undeclared = [
        key
        for key, (view_class, _) in routes.items()
        if key[0] not in ("api-root", "schema", "swagger-ui")
        and operation_for(view_class, key[1]) not in policy.OPERATIONS
    ]
    assert undeclared == []


def test_each_door_performs_the_operation_its_api_route_declares():
    """The admin side of a door and its API route name the same operation."""
    routes = api_routes()
    mismatched = [
        (door.admin, door.api, door.operation, operation_for(routes[door.api][0], door.api[1]))
        for door in policy.DOORS
        if door.api and operation_for(routes[door.api][0], door.api[1]) != door.operation
    ]
    assert mismatched == []
    assert all(door.operation in policy.OPERATIONS for door in policy.DOORS)


# --- Both doors, each role ------------------------------------------------------------------------------
@pytest.fixture
def world(org):
    owner = UserFactory(username="world-owner")
    MembershipFactory(user=owner, organization=org, role="owner")
    world = World(org, owner)
    # The member whose membership the member doors touch: not an owner (owners are tested apart).
    target = UserFactory(username="target-member")
    world.target = MembershipFactory(user=target, organization=org, role="editor")
    world.owner = owner  # world.release (and its pending activation request) come with the World
    _evaluations(world)
    return world


def _evaluations(world) -> None:
    """A suite with a case, a run of it and one result, and a second suite of the agent that it
    requires before activation (the evaluations doors' objects)."""
    from evaluations.models import Case, CaseResult, EvalRun, Requirement, Suite

    world.suite = Suite.objects.create(organization=world.org, agent=world.agent, name="Suite")
    world.case = case = Case.objects.create(suite=world.suite, name="Case", input="Hello?")
    world.run = EvalRun.objects.create(
        organization=world.org, suite=world.suite, release=world.release, total=1, done=1, status="passed"
    )
    world.result = CaseResult.objects.create(run=world.run, case=case, case_name=case.name, passed=True)
    required = Suite.objects.create(organization=world.org, agent=world.clerk, name="Required")
    world.requirement = Requirement.objects.create(organization=world.org, agent=world.clerk, suite=required)


def _admin_kwargs(door: policy.Door, world) -> dict:
    """The URL arguments of ``door``'s admin page, for ``world``'s objects."""
    objects = {
        "agents_agent": world.agent,
        "agents_execution": world.execution,
        "agents_conversation": world.conversation,
        "agents_feedback": world.feedback,
        "agents_learningexample": world.example,
        "agents_modelprovider": world.provider,
        "agents_budget": world.budget,
        "tools_tool": world.tool,
        "guardrails_guardrail": world.guardrail,
        "knowledge_knowledgebase": world.kb,
        "knowledge_document": world.document,
        "tenancy_organization": world.org,
        "tenancy_membership": world.target,
        "tenancy_invitation": world.invitation,
        "tenancy_apikey": world.api_key,
        "audit_auditevent": world.audit_event,
        "evaluations_suite": world.suite,
        "evaluations_evalrun": world.run,
        "evaluations_requirement": world.requirement,
    }
    name = door.admin.split(":")[-1]
    model = next((key for key in objects if name.startswith(key + "_")), None)
    values = {
        "object_id": objects[model].pk if model else None,
        "agent_id": world.agent.pk,
        "persona_id": world.persona.pk,
        "tool_id": world.tool.pk,
        "guardrail_id": world.guardrail.pk,
        "kb_id": world.kb.pk,
        "key_id": world.api_key.pk,
        "invitation_id": world.invitation.pk,
        "execution_id": world.execution.pk,
        "number": world.release.number,
        "approval_id": world.tool_approval.pk,
        "request_id": world.activation_request.pk,
        "suite_id": world.suite.pk,
        "run_id": world.run.pk,
        "result_id": world.result.pk,
        "case_id": world.case.pk,
        "step": "basics",
        "kind": "tools",
        "transition": door.api[1] if door.api else "activate",
    }
    route = next(r for r, n, _ in _patterns(get_resolver().url_patterns) if n == door.admin)
    params = re.findall(r"<(?:\w+:)?(\w+)>", route)
    return {param: values[param] for param in params}


def _api_url(door: policy.Door, world) -> str:
    name, action = door.api
    pks = {
        "agent": world.agent.pk,
        "agent-persona": world.persona.version,
        "agent-tool": world.tool_assignment.pk,
        "execution": world.execution.pk,
        "conversation": world.conversation.pk,
        "learning-example": world.example.pk,
        "model-provider": world.provider.pk,
        "budget": world.budget.pk,
        "tool": world.tool.pk,
        "guardrail": world.guardrail.pk,
        "knowledge-base": world.kb.pk,
        "knowledge-base-document": world.document.pk,
        "member": world.target.pk,
        "invitation": world.invitation.pk,
        "api-key": world.api_key.pk,
        "audit-event": world.audit_event.pk,
        "tool-approval": world.tool_approval.pk,
        "agent-activation-request": world.activation_request.pk,
        "activation-request": world.activation_request.pk,
        "evaluation-suite": world.suite.pk,
        "evaluation-run": world.run.pk,
        "evaluation-case-result": world.result.pk,
        "evaluation-case": world.case.pk,
        "evaluation-requirement": world.requirement.pk,
    }
    route = next(r for r, n, _ in _patterns(get_resolver().url_patterns) if n == name)
    kwargs = {}
    for param in re.findall(r"\(\?P<(\w+)>", route):
        if param == "agent_pk":
            kwargs[param] = world.agent.pk
        elif param == "knowledge_base_pk":
            kwargs[param] = world.kb.pk
        elif param == "document_pk":
            kwargs[param] = world.document.pk
        elif param == "number":
            kwargs[param] = world.release.number
        elif param == "suite_pk":
            kwargs[param] = world.suite.pk
        elif param == "execution_pk":
            kwargs[param] = world.execution.pk
        elif param in ("pk", "version"):
            kwargs[param] = pks[name.rsplit("-", 1)[0]]
    return reverse(name, kwargs=kwargs)


# What a POST through the staff UI sends (an empty form, unless the page needs a field to act).
ADMIN_POST_DATA = {
    "admin:agents_agent_assignments": {"action": "add"},
    "admin:console:run": {"message": "Hello"},
}


def _admin_answer(client: Client, door: policy.Door, world) -> tuple[bool, int]:
    url = reverse(door.admin, kwargs=_admin_kwargs(door, world))
    if door.admin_action:
        # A bulk action is offered in the changelist's menu or not at all.
        response = client.get(url)
        assert response.status_code == 200
        return f'value="{door.admin_action}"' in response.content.decode(), response.status_code
    if door.method == "POST":
        response = client.post(url, ADMIN_POST_DATA.get(door.admin, {}))
    else:
        response = client.get(url)
    assert response.status_code in (200, 302, 400, 403), (door, response.status_code)
    if response.status_code == 302:
        assert not response["Location"].startswith("/admin/login/"), door
    return response.status_code != 403, response.status_code


def _api_answer(client: APIClient, door: policy.Door, world) -> tuple[bool, int]:
    name, action = door.api
    method = METHODS.get(action) or (action if action in ("get", "put", "patch") else None)
    if method is None:
        method = "get" if action == "diff" else "post"
    # The world's one release is the agent's first: its diff names the release to compare with
    # (without one, the release before is not there: 404).
    data = {"against": world.release.number} if action == "diff" else {}
    response = getattr(client, method)(_api_url(door, world), data, format="json")
    assert response.status_code != 404, (door, response.status_code)
    return response.status_code != 403, response.status_code


def _rolled_back(call):
    """Run one door's request and undo whatever it changed, so every door sees the same world."""
    with transaction.atomic():
        answer = call()
        transaction.set_rollback(True)
    return answer


@pytest.mark.parametrize("role", ROLES)
def test_both_doors_give_the_same_answer_for_every_door(role, org, world):
    """For each door of the table, the staff page and the API route allow or refuse a member of
    ``role`` alike, and the answer is the policy's."""
    if role == "owner":
        user = world.owner
    else:
        user = UserFactory(username=f"door-{role}")
        MembershipFactory(user=user, organization=org, role=role)
    web = Client()
    web.force_login(user)
    api = APIClient()
    api.force_authenticate(user=user)
    access = policy_access(role)
    disagreements = []
    for door in policy.DOORS:
        expected = policy.allows(access, door.operation)
        admin_allowed, admin_status = _rolled_back(lambda door=door: _admin_answer(web, door, world))
        if door.api is None:
            api_allowed, api_status = expected, None
        else:
            api_allowed, api_status = _rolled_back(lambda door=door: _api_answer(api, door, world))
        if not (admin_allowed == api_allowed == expected):
            disagreements.append((door.admin, door.method, door.api, expected, admin_status, api_status))
    assert disagreements == []


def policy_access(role: str):
    from types import SimpleNamespace

    return SimpleNamespace(role=role, api_key=None, is_superuser=False)


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_both_doors_agree_on_everything_that_touches_an_owner(role, org, world):
    """Inviting an owner, revoking an owner's invitation, making an owner, demoting or removing one:
    applied for an owner through either door, refused
    to an admin through either door (finding 2 of the security review: the admin applied them)."""
    from prisma_glow.tenancy.models import Invitation, Membership

    user = world.owner if role == "owner" else UserFactory(username="door-admin")
    if role != "owner":
        MembershipFactory(user=user, organization=org, role="admin")
    second_owner = MembershipFactory(
        user=UserFactory(username="second-owner"), organization=org, role="owner"
    )
    owner_invitation = InvitationFactory(organization=org, email="owner-to-be@firm.example", role="owner")
    web = Client()
    web.force_login(user)
    api = APIClient()
    api.force_authenticate(user=user)
    member_url = f"/admin/tenancy/membership/{second_owner.pk}"
    attempts = {
        "invite an owner": (
            lambda: web.post(
                "/admin/tenancy/invitation/add/", {"email": "boss@firm.example", "role": "owner"}
            ),
            lambda: api.post(
                "/api/v1/members/invite/", {"email": "boss@firm.example", "role": "owner"}, format="json"
            ),
            lambda: Invitation.objects.filter(email="boss@firm.example").exists(),
        ),
        "revoke an owner's invitation": (
            lambda: web.post(f"/admin/tenancy/invitation/{owner_invitation.pk}/revoke/"),
            lambda: api.post(f"/api/v1/invitations/{owner_invitation.pk}/revoke/"),
            lambda: Invitation.objects.get(pk=owner_invitation.pk).revoked_at is not None,
        ),
        "promote to owner": (
            lambda: web.post(f"/admin/tenancy/membership/{world.target.pk}/change/", {"role": "owner"}),
            lambda: api.patch(f"/api/v1/members/{world.target.pk}/", {"role": "owner"}, format="json"),
            lambda: Membership.objects.get(pk=world.target.pk).role == "owner",
        ),
        "demote an owner": (
            lambda: web.post(f"{member_url}/change/", {"role": "viewer"}),
            lambda: api.patch(f"/api/v1/members/{second_owner.pk}/", {"role": "viewer"}, format="json"),
            lambda: Membership.objects.get(pk=second_owner.pk).role == "viewer",
        ),
        "remove an owner": (
            lambda: web.post(f"{member_url}/delete/", {"post": "yes"}),
            lambda: api.delete(f"/api/v1/members/{second_owner.pk}/"),
            lambda: not Membership.objects.filter(pk=second_owner.pk).exists(),
        ),
    }
    for name, (through_admin, through_api, applied) in attempts.items():
        outcomes = []
        for attempt in (through_admin, through_api):
            with transaction.atomic():
                response = attempt()
                outcomes.append((applied(), response.status_code))
                transaction.set_rollback(True)
        (admin_applied, admin_status), (api_applied, api_status) = outcomes
        assert admin_applied == api_applied == (role == "owner"), (name, outcomes)
        if role != "owner":
            assert api_status == 403 and admin_status in (200, 403), (name, outcomes)
