"""Step-up through the API: sensitive operations need a fresh second factor (403 ``step_up_required``
until ``POST /api/v1/auth/step-up/``), what needs a person is refused to keys (403
``session_required``), and the other operations are unaffected."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework.test import APIClient

from agents.activation import activation_request_create
from agents.models import Agent, ModelProvider
from guardrails.models import Guardrail
from knowledge.models import KnowledgeBase
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey, Invitation, Membership
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    ModelProviderFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    backup_codes,
    release_now,
    totp_code,
)
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

STEP_UP = "/api/v1/auth/step-up/"


def session_client(user) -> APIClient:
    """A client with a real session (as the admin's login gives), so a step-up can be recorded."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def device(owner):
    return TOTPDeviceFactory(user=owner)


@pytest.fixture
def client(owner, device):
    return session_client(owner)


def step_up(client, device) -> dict:
    response = client.post(STEP_UP, {"code": totp_code(device)}, format="json")
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    return response.json()


# --- Every sensitive operation of issue 16 ----------------------------------------------------------
@dataclass
class Case:
    """A sensitive request: how to send it, the status it gets when allowed, whether it was applied."""

    method: str
    url: str
    body: dict | None
    status: int
    applied: Any


def _cases(org) -> dict[str, callable]:
    def activate():
        # Approving another member's request to activate a release (four eyes) puts it live.
        agent = AgentFactory(organization=org)
        PersonaFactory(agent=agent, is_active=True)
        requester = UserFactory()
        MembershipFactory(user=requester, organization=org, role="editor")
        row = activation_request_create(
            agent=agent, release=release_now(agent, activate=False), actor=requester
        )
        return Case(
            "post",
            f"/api/v1/agents/{agent.pk}/activation-requests/{row.pk}/approve/",
            None,
            200,
            lambda: Agent.objects.get(pk=agent.pk).status == "active",
        )

    def deprecate():
        agent = AgentFactory(organization=org, status="active")
        return Case(
            "post",
            f"/api/v1/agents/{agent.pk}/deprecate/",
            None,
            200,
            lambda: Agent.objects.get(pk=agent.pk).status == "deprecated",
        )

    def create_key():
        return Case(
            "post",
            "/api/v1/api-keys/",
            {"name": "Portal", "scopes": ["read"]},
            201,
            lambda: APIKey.objects.filter(name="Portal").exists(),
        )

    def rotate_key():
        key = APIKeyFactory(organization=org, scopes=["read"])
        return Case(
            "post",
            f"/api/v1/api-keys/{key.pk}/rotate/",
            {},
            201,
            lambda: APIKey.objects.filter(rotated_from=key).exists(),
        )

    def revoke_key():
        key = APIKeyFactory(organization=org, scopes=["read"])
        return Case(
            "post",
            f"/api/v1/api-keys/{key.pk}/revoke/",
            None,
            200,
            lambda: APIKey.objects.get(pk=key.pk).revoked_at is not None,
        )

    def add_member():
        UserFactory(username="newcomer", email="newcomer@example.com")
        return Case(
            "post",
            "/api/v1/members/",
            {"email": "newcomer@example.com", "role": "editor"},
            202,
            lambda: Invitation.objects.filter(organization=org, email="newcomer@example.com").exists(),
        )

    def change_role():
        member = MembershipFactory(organization=org, role="viewer")
        return Case(
            "patch",
            f"/api/v1/members/{member.pk}/",
            {"role": "editor"},
            200,
            lambda: Membership.objects.get(pk=member.pk).role == "editor",
        )

    def remove_member():
        member = MembershipFactory(organization=org, role="viewer")
        return Case(
            "delete",
            f"/api/v1/members/{member.pk}/",
            None,
            204,
            lambda: not Membership.objects.filter(pk=member.pk).exists(),
        )

    def provider_with_secret():
        return Case(
            "post",
            "/api/v1/model-providers/",
            {"name": "Cloud", "kind": "offline", "api_key": "sk-new"},
            201,
            lambda: ModelProvider.objects.filter(name="Cloud").exists(),
        )

    def set_secret():
        provider = ModelProviderFactory(organization=org)
        return Case(
            "patch",
            f"/api/v1/model-providers/{provider.pk}/",
            {"api_key": "sk-new"},
            200,
            lambda: ModelProvider.objects.get(pk=provider.pk).api_key == "sk-new",
        )

    def clear_secret():
        provider = ModelProviderFactory(organization=org, api_key="sk-old")
        return Case(
            "patch",
            f"/api/v1/model-providers/{provider.pk}/",
            {"api_key": ""},
            200,
            lambda: ModelProvider.objects.get(pk=provider.pk).api_key == "",
        )

    def delete_provider_with_secret():
        provider = ModelProviderFactory(organization=org, api_key="sk-old")
        return Case(
            "delete",
            f"/api/v1/model-providers/{provider.pk}/",
            None,
            204,
            lambda: not ModelProvider.objects.filter(pk=provider.pk).exists(),
        )

    def disable_guardrail():
        guardrail = GuardrailFactory(organization=org)
        return Case(
            "patch",
            f"/api/v1/guardrails/{guardrail.pk}/",
            {"enabled": False},
            200,
            lambda: not Guardrail.objects.get(pk=guardrail.pk).enabled,
        )

    def delete_guardrail():
        guardrail = GuardrailFactory(organization=org)
        return Case(
            "delete",
            f"/api/v1/guardrails/{guardrail.pk}/",
            None,
            204,
            lambda: not Guardrail.objects.filter(pk=guardrail.pk).exists(),
        )

    def delete_knowledge_base():
        kb = KnowledgeBaseFactory(organization=org)
        return Case(
            "delete",
            f"/api/v1/knowledge-bases/{kb.pk}/",
            None,
            204,
            lambda: not KnowledgeBase.objects.filter(pk=kb.pk).exists(),
        )

    return {name: func for name, func in locals().items() if callable(func) and not name.startswith("_")}


SENSITIVE = [
    "activate",
    "deprecate",
    "create_key",
    "rotate_key",
    "revoke_key",
    "add_member",
    "change_role",
    "remove_member",
    "provider_with_secret",
    "set_secret",
    "clear_secret",
    "delete_provider_with_secret",
    "disable_guardrail",
    "delete_guardrail",
    "delete_knowledge_base",
]


def send(client, case: Case):
    if case.body is None:
        return getattr(client, case.method)(case.url)
    return getattr(client, case.method)(case.url, case.body, format="json")


def test_every_sensitive_operation_is_covered(org):
    assert sorted(_cases(org)) == sorted(SENSITIVE)


@pytest.mark.parametrize("name", SENSITIVE)
def test_sensitive_operation_needs_a_fresh_factor_then_proceeds(name, org, client, device):
    """A signed-in owner with a factor and no recent check gets 403 step_up_required (the message says
    how), nothing is changed; after POST auth/step-up the same request is applied."""
    case = _cases(org)[name]()
    body = assert_error(send(client, case), 403)
    assert body["code"] == "step_up_required"
    assert "POST /api/v1/auth/step-up/" in body["message"]
    assert not case.applied()
    step_up(client, device)
    response = send(client, case)
    assert response.status_code == case.status, response.content
    assert case.applied()


def test_the_window_lasts_the_setting(org, client, device, settings):
    """A check is fresh for PRISMA_GLOW_STEP_UP_MINUTES, then asked again."""
    settings.PRISMA_GLOW_STEP_UP_MINUTES = 10
    cases = _cases(org)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        body = step_up(client, device)
        assert body["step_up_minutes"] == 10
        assert dt.datetime.fromisoformat(body["fresh_until"]) == start.replace(microsecond=0) + dt.timedelta(
            minutes=10
        )
    with time_machine.travel(start + dt.timedelta(minutes=9, seconds=50), tick=False):
        assert send(client, cases["delete_guardrail"]()).status_code == 204
    with time_machine.travel(start + dt.timedelta(minutes=10, seconds=1), tick=False):
        case = cases["delete_knowledge_base"]()
        assert assert_error(send(client, case), 403)["code"] == "step_up_required"
        assert not case.applied()


def test_non_sensitive_operations_are_unaffected(org, client):
    """Renaming a provider, re-enabling or renaming a guardrail, creating one disabled, editing an
    agent or a knowledge base, reading keys and members: no code asked."""
    provider = ModelProviderFactory(organization=org, api_key="sk-old")
    assert (
        client.patch(
            f"/api/v1/model-providers/{provider.pk}/", {"name": "Renamed"}, format="json"
        ).status_code
        == 200
    )
    assert ModelProvider.objects.get(pk=provider.pk).api_key == "sk-old"
    guardrail = GuardrailFactory(organization=org, enabled=False)
    assert (
        client.patch(f"/api/v1/guardrails/{guardrail.pk}/", {"enabled": True}, format="json").status_code
        == 200
    )
    assert (
        client.patch(f"/api/v1/guardrails/{guardrail.pk}/", {"name": "Other"}, format="json").status_code
        == 200
    )
    response = client.post(
        "/api/v1/guardrails/",
        {
            "name": "Off",
            "kind": "keywords",
            "action": "block",
            "config": {"keywords": ["x"]},
            "enabled": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    agent = AgentFactory(organization=org)
    assert (
        client.patch(f"/api/v1/agents/{agent.pk}/", {"description": "New"}, format="json").status_code == 200
    )
    kb = KnowledgeBaseFactory(organization=org)
    assert client.patch(f"/api/v1/knowledge-bases/{kb.pk}/", {"name": "KB"}, format="json").status_code == 200
    assert client.get("/api/v1/api-keys/").status_code == 200
    assert client.get("/api/v1/members/").status_code == 200
    provider_without = ModelProviderFactory(organization=org)
    assert client.delete(f"/api/v1/model-providers/{provider_without.pk}/").status_code == 204


def test_without_a_factor_in_development_nothing_is_asked(org, owner):
    """Factors not required (development) and none enrolled: sensitive operations proceed."""
    case = _cases(org)["delete_guardrail"]()
    assert send(session_client(owner), case).status_code == 204


def test_when_factors_are_required_a_user_without_one_is_told_to_enrol(org, owner, settings):
    """Required factors close the session before any operation (mfa_required, naming the enrolment
    page): the step-up is never reached without a factor."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    case = _cases(org)["delete_guardrail"]()
    body = assert_error(send(session_client(owner), case), 403)
    assert body["code"] == "mfa_required" and "/admin/account/security/" in body["message"]
    assert not case.applied()


def test_refusals_for_role_come_before_the_step_up(org, editor):
    """An editor who may not manage keys is told so (permission_denied), not asked for a code."""
    TOTPDeviceFactory(user=editor)
    body = assert_error(
        session_client(editor).post("/api/v1/api-keys/", {"name": "x", "scopes": ["read"]}), 403
    )
    assert body["code"] == "permission_denied"


# --- API keys -------------------------------------------------------------------------------------
PERSON_ONLY = ["activate", "create_key", "rotate_key", "add_member", "change_role", "remove_member"]


@pytest.mark.parametrize("name", PERSON_ONLY)
def test_keys_never_do_what_needs_a_person(name, org):
    """Even a key with every scope: 403 session_required, nothing changed."""
    case = _cases(org)[name]()
    key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plaintext}")
    body = assert_error(send(client, case), 403)
    assert body["code"] == "session_required"
    assert "a signed-in" in body["message"]
    assert not case.applied()


@pytest.mark.parametrize(
    ("name", "scopes", "allowed"),
    [
        ("deprecate", ["write"], True),
        ("deprecate", ["read", "execute"], False),
        ("revoke_key", ["admin"], True),
        ("revoke_key", ["read", "write", "execute"], False),
        ("set_secret", ["admin"], True),
        ("set_secret", ["write"], False),
        ("disable_guardrail", ["write"], True),
        ("delete_guardrail", ["read"], False),
        ("delete_knowledge_base", ["write"], True),
    ],
)
def test_other_sensitive_operations_keep_their_scope_rules_for_keys(name, scopes, allowed, org):
    """Keys are not session users: no step-up; their scope decides, as before."""
    case = _cases(org)[name]()
    key = APIKeyFactory(organization=org, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plaintext}")
    response = send(client, case)
    if allowed:
        assert response.status_code == case.status, response.content
        assert case.applied()
    else:
        assert assert_error(response, 403)["code"] == "permission_denied"
        assert not case.applied()


# --- POST /api/v1/auth/step-up/ ---------------------------------------------------------------------
def test_step_up_renews_the_session_and_is_audited(org, owner, client, device):
    before = client.cookies["sessionid"].value
    body = step_up(client, device)
    after = client.cookies["sessionid"].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    event = AuditEvent.objects.get(action="factor.step_up")
    assert event.organization == org and event.actor_user == owner
    assert event.after["door"] == "api" and event.after["device"] == "authenticator"
    assert event.after["fresh_until"] == body["fresh_until"].replace("Z", "+00:00")


def test_a_backup_code_steps_up_once(org, owner, client, device):
    codes = backup_codes(owner)
    assert client.post(STEP_UP, {"code": codes[0]}, format="json").status_code == 200
    assert AuditEvent.objects.get(action="factor.step_up").after["device"] == "backup_code"
    fresh = session_client(owner)
    assert_error(fresh.post(STEP_UP, {"code": codes[0]}, format="json"), 400, fields=["code"])


def test_a_wrong_or_reused_code_is_400_and_audited(org, owner, client, device):
    code = totp_code(device)
    wrong = "000000" if code != "000000" else "111111"
    body = assert_error(client.post(STEP_UP, {"code": wrong}, format="json"), 400, fields=["code"])
    assert "wrong" in body["message"]
    event = AuditEvent.objects.get(action="factor.step_up_failed")
    assert event.after == {"door": "api", "operation": "", "reason": "wrong"}
    case = _cases(org)["delete_guardrail"]()
    assert assert_error(send(client, case), 403)["code"] == "step_up_required"


def test_the_same_code_is_accepted_once(org, owner, device):
    code = totp_code(device)
    assert session_client(owner).post(STEP_UP, {"code": code}, format="json").status_code == 200
    assert_error(session_client(owner).post(STEP_UP, {"code": code}, format="json"), 400, fields=["code"])


def test_repeated_wrong_codes_are_throttled_429_with_retry_after(org, owner, client, device):
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    assert client.post(STEP_UP, {"code": wrong}, format="json").status_code == 400
    response = client.post(STEP_UP, {"code": totp_code(device)}, format="json")
    body = assert_error(response, 429)
    assert body["code"] == "throttled" and "wrong codes" in body["message"]
    assert int(response["Retry-After"]) >= 1
    assert AuditEvent.objects.filter(action="factor.step_up_failed", after__reason="throttled").exists()
    assert not AuditEvent.objects.filter(action="factor.step_up").exists()


def test_a_user_without_a_factor_is_told_to_enrol(org, owner):
    body = assert_error(
        session_client(owner).post(STEP_UP, {"code": "123456"}, format="json"), 400, fields=["code"]
    )
    assert "no second factor" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"code": 123456}',
        b'{"code": ["123456"]}',
        b'{"code": ""}',
        b"{}",
        b'{"code": "' + b"9" * 100 + b'"}',
        b'{"code": "12\\u00003456"}',
    ],
)
def test_malformed_bodies_are_400_never_500(body, client):
    assert_error(client.post(STEP_UP, body, content_type="application/json"), 400)


def test_step_up_is_for_session_users_only(org, device):
    assert_error(APIClient().post(STEP_UP, {"code": "123456"}, format="json"), 401)
    key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plaintext}")
    body = assert_error(client.post(STEP_UP, {"code": totp_code(device)}, format="json"), 403)
    assert body["code"] == "session_required"


def test_step_up_needs_the_csrf_token_like_every_session_write(owner, device):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    body = assert_error(client.post(STEP_UP, {"code": totp_code(device)}, format="json"), 403)
    assert "CSRF" in body["message"]
    assert not AuditEvent.objects.filter(action__startswith="factor.step_up").exists()


# --- Where a stored secret is sent (review of issue 16) --------------------------------------------
@pytest.fixture
def remote_provider(org, settings):
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1:11434", "127.0.0.1:9999"]
    return ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url="http://127.0.0.1:11434/v1", api_key="sk-old"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://127.0.0.1:9999/v1"},
        {"kind": "offline"},
    ],
    ids=["base_url", "kind"],
)
def test_sending_a_stored_secret_elsewhere_needs_a_fresh_factor(org, client, device, remote_provider, change):
    """Another base_url (or kind) sends the stored key to another host on the next run: step-up first."""
    url = f"/api/v1/model-providers/{remote_provider.pk}/"
    assert assert_error(client.patch(url, change, format="json"), 403)["code"] == "step_up_required"
    unchanged = ModelProvider.objects.get(pk=remote_provider.pk)
    assert (unchanged.kind, unchanged.base_url) == ("openai_compatible", "http://127.0.0.1:11434/v1")
    step_up(client, device)
    response = client.patch(url, change, format="json")
    assert response.status_code == 200, response.content
    moved = ModelProvider.objects.get(pk=remote_provider.pk)
    assert all(getattr(moved, field) == value for field, value in change.items())


def test_moving_a_provider_without_a_secret_or_keeping_its_address_asks_nothing(org, client, remote_provider):
    keyless = ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url="http://127.0.0.1:11434/v1"
    )
    moved = client.patch(
        f"/api/v1/model-providers/{keyless.pk}/", {"base_url": "http://127.0.0.1:9999/v1"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    same = client.patch(
        f"/api/v1/model-providers/{remote_provider.pk}/",
        {"base_url": "http://127.0.0.1:11434/v1", "kind": "openai_compatible", "timeout_seconds": 9},
        format="json",
    )
    assert same.status_code == 200, same.content


def test_a_superuser_of_no_organisation_steps_up(db):
    """The step-up is the session's, not an organisation's: a superuser who belongs to none steps up
    (200, audited) instead of being refused for lack of a membership."""
    root = UserFactory(username="root", is_superuser=True)
    device = TOTPDeviceFactory(user=root)
    client = session_client(root)
    body = step_up(client, device)
    assert body["step_up_minutes"] >= 1
    assert AuditEvent.objects.filter(action="factor.step_up", actor_user=root).exists()
