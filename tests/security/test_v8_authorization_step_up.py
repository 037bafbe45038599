"""ASVS 5.0 level 2 (and V7.5.3 of level 3): step-up for sensitive operations, and what only a person
may do. Detailed behaviour: tests/platform/test_step_up.py (API), test_step_up_admin.py (admin),
tests/e2e/test_step_up.py (browser)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client
from rest_framework.test import APIClient

from agents.activation import activation_request_create
from agents.models import Agent
from prisma_glow import policy
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    GuardrailFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    release_now,
    totp_code,
)
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

STEP_UP = "/api/v1/auth/step-up/"


def person(role="owner", *, fresh: bool, superuser: bool = False):
    return SimpleNamespace(role=role, api_key=None, is_superuser=superuser, step_up_needed=lambda: not fresh)


def every_key():
    return SimpleNamespace(
        role=None, api_key=APIKey(scopes=["read", "write", "execute", "admin"]), is_superuser=False
    )


def sensitive_context(operation: str) -> tuple[object, dict]:
    """An object and a request that make ``operation`` sensitive (the rules that depend on them)."""
    obj = SimpleNamespace(
        api_key="sk-stored", enabled=True, role="viewer", organization_id=1, one_person_activation=False
    )
    context = {
        "model_provider.add": {"api_key": "sk-new"},
        "model_provider.change": {"api_key": "sk-new"},
        "guardrail.change": {"enabled": False},
        "organization.update": {"one_person_activation": True},
    }.get(operation, {})
    return obj, context


@pytest.mark.parametrize("operation", sorted(policy.STEP_UP))
def test_v7_5_3_every_sensitive_operation_needs_a_fresh_second_factor(operation):
    """ASVS 5.0 V7.5.3: a highly sensitive operation needs a further check of a factor: allowed to a
    person of the right role only within the step-up window, refused with step_up_required before."""
    obj, context = sensitive_context(operation)
    assert policy.sensitive(operation, obj, **context)
    superuser = policy.OPERATIONS[operation].role == policy.SUPERUSER  # user.manage: the site's
    stale = policy.decide(person(fresh=False, superuser=superuser), operation, obj, **context)
    assert not stale and stale.code == policy.STEP_UP_REQUIRED
    assert policy.decide(person(fresh=True, superuser=superuser), operation, obj, **context)


def test_v7_5_3_the_issue_s_sensitive_operations_are_all_in_the_table():
    """ASVS 5.0 V7.5.3: the list of issue 16, written out here rather than read from the table."""
    assert set(policy.STEP_UP) == {
        # Issue 17: approving a release's activation, and who may approve alone.
        "release.approve",
        "organization.update",
        "agent.deprecate",
        "api_key.create",
        "api_key.rotate",
        "api_key.revoke",
        "membership.add",
        "membership.change_role",
        "membership.remove",
        "membership.grant_owner",
        "model_provider.add",
        "model_provider.change",
        "model_provider.delete",
        "guardrail.change",
        "guardrail.delete",
        "knowledge_base.delete",
        # Review of issue 16: Django's own user pages (making superusers, passwords, deleting users).
        "user.manage",
    }


@pytest.mark.parametrize(
    "operation", sorted(op for op, rule in policy.OPERATIONS.items() if rule.scope is None)
)
def test_v8_2_1_what_needs_a_person_is_refused_to_every_key(operation):
    """ASVS 5.0 V8.2.1: function-level access — members, roles and owners, creating and rotating keys,
    activating agents, the organisation: never an API key, whatever its scopes (session_required)."""
    decision = policy.decide(every_key(), operation, role="viewer")
    assert not decision and decision.code == policy.SESSION_REQUIRED


def test_v8_2_1_through_the_api_a_key_cannot_activate_nor_create_keys(org):
    """ASVS 5.0 V8.2.1 at the door: an admin key gets 403 session_required, nothing changes."""
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    key = APIKeyFactory(organization=org, scopes=["admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plaintext}")
    count = APIKey.objects.count()
    row = activation_request_create(agent=agent, release=release_now(agent, activate=False), actor=key)
    approve = f"/api/v1/agents/{agent.pk}/activation-requests/{row.pk}/approve/"
    for url, body in ((approve, None), ("/api/v1/api-keys/", {"name": "k"})):
        assert assert_error(client.post(url, body, format="json"), 403)["code"] == "session_required"
    assert Agent.objects.get(pk=agent.pk).status == "draft" and APIKey.objects.count() == count


def test_v8_3_1_a_check_in_one_session_does_not_count_in_another(org, owner):
    """ASVS 5.0 V8.3.1: the freshness is the server's record of this session, not something a client
    can claim: a step-up in one browser does not let another session of the same user through."""
    device = TOTPDeviceFactory(user=owner)
    first, second = APIClient(), APIClient()
    first.force_login(owner)
    second.force_login(owner)
    assert first.post(STEP_UP, {"code": totp_code(device)}, format="json").status_code == 200
    guardrail = GuardrailFactory(organization=org)
    body = assert_error(second.delete(f"/api/v1/guardrails/{guardrail.pk}/"), 403)
    assert body["code"] == "step_up_required"
    assert first.delete(f"/api/v1/guardrails/{guardrail.pk}/").status_code == 204


def test_v8_3_1_the_admin_continues_only_with_a_code_checked_by_the_server(org, owner):
    """ASVS 5.0 V8.3.1: re-posting the code page's hidden fields without a valid code (a forged
    continuation) shows the page again; nothing is done."""
    TOTPDeviceFactory(user=owner)
    agent = AgentFactory(organization=org, status="active")
    web = Client()
    web.force_login(owner)
    url = f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/"
    for data in ({}, {"_pg_step_up_code": ""}, {"_pg_step_up_code": "not-a-code"}):
        response = web.post(url, data)
        assert response.status_code == 200 and "step-up-title" in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).status == "active"


def test_v6_5_1_a_code_steps_up_once(org, owner):
    """ASVS 5.0 V6.5.1: a TOTP code is usable once, for a step-up as for a sign-in."""
    device = TOTPDeviceFactory(user=owner)
    code = totp_code(device)
    clients = [APIClient(), APIClient()]
    for client in clients:
        client.force_login(owner)
    assert clients[0].post(STEP_UP, {"code": code}, format="json").status_code == 200
    assert_error(clients[1].post(STEP_UP, {"code": code}, format="json"), 400, fields=["code"])


def test_v7_2_4_a_step_up_gives_the_session_a_new_key(org, owner):
    """ASVS 5.0 V7.2.4: a new session token at re-authentication; the old one ends."""
    device = TOTPDeviceFactory(user=owner)
    client = APIClient()
    client.force_login(owner)
    old = client.cookies["sessionid"].value
    assert client.post(STEP_UP, {"code": totp_code(device)}, format="json").status_code == 200
    assert client.cookies["sessionid"].value != old
    stale = APIClient()
    stale.cookies["sessionid"] = old
    assert_error(stale.get("/api/v1/organization/"), 401)


def test_v16_3_1_every_step_up_is_audited_with_its_outcome(org, owner):
    """ASVS 5.0 V16.3.1: authentication events are logged, successful and failed, with who, where
    from and for which operation; never the code."""
    device = TOTPDeviceFactory(user=owner)
    agent = AgentFactory(organization=org, status="active")
    web = Client()
    web.force_login(owner)
    url = f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/"
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    web.post(url, {"_pg_step_up_code": wrong})
    device.refresh_from_db()
    device.throttle_reset()
    code = totp_code(device)
    assert web.post(url, {"_pg_step_up_code": code}).status_code == 302
    failed = AuditEvent.objects.get(action="factor.step_up_failed")
    passed = AuditEvent.objects.get(action="factor.step_up")
    for event in (failed, passed):
        assert event.actor_user == owner and event.organization == org and event.ip == "127.0.0.1"
        assert event.after["operation"] == "agent.deprecate" and event.after["door"] == "admin"
        assert code not in str(event.after) and wrong not in str(event.after)
    assert failed.after["reason"] == "wrong"


@pytest.mark.parametrize("field, value", [("base_url", "https://elsewhere.example/v1"), ("kind", "offline")])
def test_v7_5_3_sending_a_stored_secret_elsewhere_is_sensitive(field, value):
    """ASVS 5.0 V7.5.3: changing where a provider's stored key is sent (its base_url or kind) is as
    sensitive as setting the key: the next run would send the key there."""
    holding = SimpleNamespace(
        api_key="sk-stored", base_url="https://api.example/v1", kind="openai_compatible"
    )
    assert policy.sensitive("model_provider.change", holding, **{field: value})
    assert not policy.sensitive("model_provider.change", holding, **{field: getattr(holding, field)})
    keyless = SimpleNamespace(api_key="", base_url="https://api.example/v1", kind="openai_compatible")
    assert not policy.sensitive("model_provider.change", keyless, **{field: value})


def test_v8_2_1_user_accounts_are_managed_by_superusers_only():
    """ASVS 5.0 V8.2.1: Django's user pages (user.manage) are the site's, not an organisation's: an
    owner is refused, a superuser allowed after a fresh check."""
    assert not policy.allows(person("owner", fresh=True), "user.manage")
    assert policy.decide(person(None, fresh=True, superuser=True), "user.manage")
