"""Step-up in the staff UI: a sensitive POST shows a page asking for a code that carries the original
fields; a right code continues the action with them, a wrong one does nothing."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from agents.activation import activation_request_create
from agents.models import Agent, ModelProvider
from guardrails.models import Guardrail
from knowledge.models import KnowledgeBase
from prisma_glow import factors
from prisma_glow.admin.stepup import CODE_FIELD
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey, Invitation, Membership
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    GuardrailFactory,
    InvitationFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    ModelProviderFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    release_now,
    totp_code,
)

pytestmark = pytest.mark.django_db

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def device(owner):
    return TOTPDeviceFactory(user=owner)


@pytest.fixture
def web(owner, device):
    client = Client()
    client.force_login(owner)
    return client


def is_code_page(response) -> bool:
    return response.status_code == 200 and "admin/pg/step_up.html" in [t.name for t in response.templates]


def carried(response) -> list[tuple[str, str]]:
    """The hidden fields of the code page (the original POST), as the browser would send them back."""
    text = response.content.decode()
    form = text[text.index('id="step-up-title"') :]
    return [
        (name, html.unescape(value)) for name, value in HIDDEN.findall(form) if name != "csrfmiddlewaretoken"
    ]


def answer(web, url, page, code: str):
    """Submit the code page: its hidden fields and the code, to the same URL."""
    data: dict[str, list[str]] = {}
    for name, value in carried(page):
        data.setdefault(name, []).append(value)
    data[CODE_FIELD] = [code]
    return web.post(url, data)


def wrong(device) -> str:
    return "000000" if totp_code(device) != "000000" else "111111"


def test_approving_an_activation_asks_a_code_then_activates(org, owner, editor, web, device):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    row = activation_request_create(agent=agent, release=release_now(agent, activate=False), actor=editor)
    url = f"/admin/agents/agent/activation-requests/{row.pk}/approve/"
    page = web.post(url, {"next": f"/admin/agents/agent/{agent.pk}/overview/"})
    assert is_code_page(page)
    text = page.content.decode()
    assert "Approve the activation of a release: confirm it" in text and f'action="{url}"' in text
    assert 'autocomplete="one-time-code"' in text and "csrfmiddlewaretoken" in text
    assert "no-store" in page["Cache-Control"]
    assert Agent.objects.get(pk=agent.pk).status == "draft"

    again = answer(web, url, page, wrong(device))
    assert is_code_page(again) and "wrong, expired or already used" in again.content.decode()
    assert Agent.objects.get(pk=agent.pk).status == "draft"
    failed = AuditEvent.objects.get(action="factor.step_up_failed")
    assert failed.after == {"door": "admin", "operation": "release.approve", "reason": "wrong"}

    device.refresh_from_db()
    device.throttle_reset()
    done = answer(web, url, page, totp_code(device))
    assert done.status_code == 302 and done["Location"] == f"/admin/agents/agent/{agent.pk}/overview/"
    assert Agent.objects.get(pk=agent.pk).status == "active"
    event = AuditEvent.objects.get(action="factor.step_up")
    assert event.actor_user == owner and event.organization == org
    assert event.after["door"] == "admin" and event.after["operation"] == "release.approve"
    assert AuditEvent.objects.filter(action="agent.activate", object_id=str(agent.pk)).exists()


def test_the_check_lasts_so_the_next_sensitive_action_asks_nothing(org, web, device):
    agent = AgentFactory(organization=org, status="active")
    other = AgentFactory(organization=org, status="active")
    url = f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/"
    assert answer(web, url, web.post(url), totp_code(device)).status_code == 302
    assert web.post(f"/admin/agents/agent/{other.pk}/lifecycle/deprecate/").status_code == 302
    assert Agent.objects.get(pk=other.pk).status == "deprecated"


def test_bulk_deprecation_carries_the_selection(org, web, device):
    agents = [AgentFactory(organization=org, status="active") for _ in range(2)]
    untouched = AgentFactory(organization=org, status="active")
    url = "/admin/agents/agent/"
    page = web.post(
        url, {"action": "deprecate_selected", "index": 0, "_selected_action": [a.pk for a in agents]}
    )
    assert is_code_page(page)
    assert sorted(v for n, v in carried(page) if n == "_selected_action") == sorted(str(a.pk) for a in agents)
    assert not Agent.objects.filter(status="deprecated").exists()
    done = answer(web, url, page, totp_code(device))
    assert done.status_code == 302
    assert set(Agent.objects.filter(status="deprecated").values_list("pk", flat=True)) == {
        a.pk for a in agents
    }
    assert Agent.objects.get(pk=untouched.pk).status == "active"


def test_export_is_not_sensitive(org, web):
    agent = AgentFactory(organization=org)
    response = web.post(
        "/admin/agents/agent/", {"action": "export_csv", "index": 0, "_selected_action": [agent.pk]}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_creating_an_api_key_asks_a_code_then_shows_the_secret(org, web, device):
    url = "/admin/tenancy/apikey/add/"
    page = web.post(url, {"name": "Portal", "scopes": ["read", "execute"], "expires_at": ""})
    assert is_code_page(page)
    assert not APIKey.objects.filter(name="Portal").exists()
    done = answer(web, url, page, totp_code(device))
    assert done.status_code == 200 and "admin/tenancy/apikey/secret.html" in [t.name for t in done.templates]
    assert APIKey.objects.get(name="Portal").scopes == ["read", "execute"]


def test_rotating_and_revoking_a_key_ask_a_code(org, web, device):
    key = APIKeyFactory(organization=org, scopes=["read"])
    rotate = f"/admin/tenancy/apikey/{key.pk}/rotate/"
    page = web.post(rotate, {"grace_minutes": "5", "expires_at": ""})
    assert is_code_page(page)
    assert ("grace_minutes", "5") in carried(page)
    assert not APIKey.objects.filter(rotated_from=key).exists()
    assert answer(web, rotate, page, totp_code(device)).status_code == 200
    assert APIKey.objects.filter(rotated_from=key).exists()
    # Fresh now: revoking the new key asks nothing more.
    new = APIKey.objects.get(rotated_from=key)
    assert web.post(f"/admin/tenancy/apikey/{new.pk}/revoke/").status_code == 302
    assert APIKey.objects.get(pk=new.pk).revoked_at is not None


def test_changing_a_role_and_removing_a_member_ask_a_code(org, web, device):
    member = MembershipFactory(organization=org, role="viewer")
    change = f"/admin/tenancy/membership/{member.pk}/change/"
    page = web.post(change, {"role": "editor"})
    assert is_code_page(page)
    assert Membership.objects.get(pk=member.pk).role == "viewer"
    assert answer(web, change, page, totp_code(device)).status_code == 302
    assert Membership.objects.get(pk=member.pk).role == "editor"


def test_removing_a_member_asks_a_code(org, web, device):
    member = MembershipFactory(organization=org, role="viewer")
    url = f"/admin/tenancy/membership/{member.pk}/delete/"
    page = web.post(url, {"post": "yes"})
    assert is_code_page(page) and Membership.objects.filter(pk=member.pk).exists()
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()


def provider_form(provider, **changes) -> dict:
    data = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url or "",
        "default_model": provider.default_model or "",
        "price_input_per_1k": str(provider.price_input_per_1k),
        "price_output_per_1k": str(provider.price_output_per_1k),
        "timeout_seconds": str(provider.timeout_seconds),
        "max_retries": str(provider.max_retries),
        "api_key": "",
    }
    return {**data, **changes}


def test_a_provider_secret_asks_a_code_other_changes_do_not(org, web, device):
    provider = ModelProviderFactory(organization=org, api_key="sk-old")
    url = f"/admin/agents/modelprovider/{provider.pk}/change/"
    renamed = web.post(url, provider_form(provider, name="Renamed"))
    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    assert ModelProvider.objects.get(pk=provider.pk).api_key == "sk-old"
    provider.refresh_from_db()
    page = web.post(url, provider_form(provider, api_key="sk-new"))
    assert is_code_page(page)
    assert ModelProvider.objects.get(pk=provider.pk).api_key == "sk-old"
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert ModelProvider.objects.get(pk=provider.pk).api_key == "sk-new"


def test_clearing_a_provider_secret_asks_a_code(org, web, device):
    provider = ModelProviderFactory(organization=org, api_key="sk-old")
    url = f"/admin/agents/modelprovider/{provider.pk}/change/"
    page = web.post(url, provider_form(provider, clear_api_key="on"))
    assert is_code_page(page) and ModelProvider.objects.get(pk=provider.pk).api_key == "sk-old"
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert ModelProvider.objects.get(pk=provider.pk).api_key == ""


def guardrail_form(guardrail, **changes) -> dict:
    data = {
        "name": guardrail.name,
        "description": "",
        "kind": guardrail.kind,
        "action": guardrail.action,
        "applies_to_input": "on",
        "config": '{"keywords": ["forbidden"]}',
        "enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_turning_a_guardrail_off_asks_a_code_editing_it_does_not(org, web, device):
    guardrail = GuardrailFactory(organization=org)
    url = f"/admin/guardrails/guardrail/{guardrail.pk}/change/"
    assert web.post(url, guardrail_form(guardrail, name="Renamed")).status_code == 302
    page = web.post(url, guardrail_form(guardrail, name="Renamed", enabled=None))
    assert is_code_page(page) and Guardrail.objects.get(pk=guardrail.pk).enabled
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert not Guardrail.objects.get(pk=guardrail.pk).enabled


@pytest.mark.parametrize("kind", ["guardrail", "knowledge_base"])
def test_deleting_a_guardrail_or_a_knowledge_base_asks_a_code(kind, org, web, device):
    obj = (
        GuardrailFactory(organization=org) if kind == "guardrail" else KnowledgeBaseFactory(organization=org)
    )
    model = Guardrail if kind == "guardrail" else KnowledgeBase
    url = f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/delete/"
    page = web.post(url, {"post": "yes"})
    assert is_code_page(page) and model.objects.filter(pk=obj.pk).exists()
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert not model.objects.filter(pk=obj.pk).exists()


def test_a_refusal_for_role_is_not_a_code_page(org, editor):
    """An editor may not change roles: refused as before (403), never asked for a code."""
    TOTPDeviceFactory(user=editor)
    member = MembershipFactory(organization=org, role="viewer")
    client = Client()
    client.force_login(editor)
    response = client.post(f"/admin/tenancy/membership/{member.pk}/change/", {"role": "editor"})
    assert response.status_code == 403 and not is_code_page(response)
    assert Membership.objects.get(pk=member.pk).role == "viewer"


def test_when_factors_are_required_a_user_without_one_is_sent_to_enrol(org, owner, settings):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    agent = AgentFactory(organization=org, status="active")
    client = Client()
    client.force_login(owner)
    page = client.post(f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/")
    # Required factors close every page but the enrolment before the step-up is reached.
    assert page.status_code == 302 and page["Location"].startswith("/admin/account/security/")
    assert Agent.objects.get(pk=agent.pk).status == "active"


def test_without_a_factor_in_development_nothing_is_asked(org, owner):
    agent = AgentFactory(organization=org, status="active")
    client = Client()
    client.force_login(owner)
    assert client.post(f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/").status_code == 302
    assert Agent.objects.get(pk=agent.pk).status == "deprecated"


def test_the_code_page_renews_the_session_key(org, owner, web, device):
    agent = AgentFactory(organization=org, status="active")
    url = f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/"
    page = web.post(url)
    before = web.cookies["sessionid"].value
    answer(web, url, page, totp_code(device))
    assert web.cookies["sessionid"].value != before
    request = type("R", (), {"session": web.session, "user": owner})()
    assert factors.checked_recently(request)


def test_a_custom_page_refuses_a_role_in_the_admin_layout(org, viewer):
    """A viewer may not deprecate: the lifecycle page answers the admin's refusal page (403, with a
    way back), never a code page, and nothing changes."""
    TOTPDeviceFactory(user=viewer)
    agent = AgentFactory(organization=org, status="active")
    client = Client()
    client.force_login(viewer)
    response = client.post(f"/admin/agents/agent/{agent.pk}/lifecycle/deprecate/")
    assert response.status_code == 403 and not is_code_page(response)
    assert "admin/pg/refused.html" in [t.name for t in response.templates]
    assert "Your role (viewer) cannot deprecate agents" in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).status == "active"


def test_sending_a_stored_provider_secret_to_another_address_asks_a_code(org, web, device, settings):
    """The admin's change form posts every field: only a base_url (or kind) different from the
    provider's, on one that holds a key, is sensitive."""
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1:11434", "127.0.0.1:9999"]
    provider = ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url="http://127.0.0.1:11434/v1", api_key="sk-old"
    )
    url = f"/admin/agents/modelprovider/{provider.pk}/change/"
    assert web.post(url, provider_form(provider, timeout_seconds="9")).status_code == 302
    provider.refresh_from_db()
    page = web.post(url, provider_form(provider, base_url="http://127.0.0.1:9999/v1"))
    assert is_code_page(page)
    assert ModelProvider.objects.get(pk=provider.pk).base_url == "http://127.0.0.1:11434/v1"
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert ModelProvider.objects.get(pk=provider.pk).base_url == "http://127.0.0.1:9999/v1"


# --- Django's own user pages (superusers): user.manage ----------------------------------------------
@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def root_device(superuser):
    return TOTPDeviceFactory(user=superuser)


@pytest.fixture
def root(superuser, root_device):
    client = Client()
    client.force_login(superuser)
    return client


def test_making_a_superuser_asks_a_code_then_saves(root, root_device):
    """Changing a user (here: making them superuser) is user.manage: a code first, then the save."""
    target = UserFactory(username="target")
    url = f"/admin/auth/user/{target.pk}/change/"
    form = {
        "username": "target",
        "email": target.email,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    page = root.post(url, form)
    assert is_code_page(page)
    assert not type(target).objects.get(pk=target.pk).is_superuser
    done = answer(root, url, page, totp_code(root_device))
    assert done.status_code == 302, done.content.decode()[:3000]
    assert type(target).objects.get(pk=target.pk).is_superuser
    assert AuditEvent.objects.filter(
        action="factor.step_up", actor_user=root_device.user, after__operation="user.manage"
    ).exists()


def test_setting_a_password_asks_a_code(root, root_device):
    target = UserFactory(username="target")
    url = f"/admin/auth/user/{target.pk}/password/"
    form = {
        "password1": "An0ther-long-passphrase",
        "password2": "An0ther-long-passphrase",
        "usable_password": "true",
    }
    page = root.post(url, form)
    assert is_code_page(page)
    assert type(target).objects.get(pk=target.pk).check_password("correct-horse-battery")
    assert answer(root, url, page, totp_code(root_device)).status_code == 302
    assert type(target).objects.get(pk=target.pk).check_password("An0ther-long-passphrase")


def test_deleting_a_user_asks_a_code(root, root_device):
    one = UserFactory(username="one")
    model = type(one)
    url = f"/admin/auth/user/{one.pk}/delete/"
    page = root.post(url, {"post": "yes"})
    assert is_code_page(page) and model.objects.filter(pk=one.pk).exists()
    assert answer(root, url, page, totp_code(root_device)).status_code == 302
    assert not model.objects.filter(pk=one.pk).exists()


def test_deleting_users_in_bulk_asks_a_code(root, root_device):
    two = UserFactory(username="two")
    model = type(two)
    changelist = "/admin/auth/user/"
    bulk = {"action": "delete_selected", "_selected_action": [str(two.pk)], "post": "yes"}
    page = root.post(changelist, bulk)
    assert is_code_page(page) and model.objects.filter(pk=two.pk).exists()
    done = answer(root, changelist, page, totp_code(root_device))
    assert done.status_code == 302 and not model.objects.filter(pk=two.pk).exists()


def test_adding_a_user_asks_a_code(root, root_device):
    url = "/admin/auth/user/add/"
    form = {
        "username": "newcomer",
        "password1": "An0ther-long-passphrase",
        "password2": "An0ther-long-passphrase",
        "usable_password": "true",
    }
    page = root.post(url, form)
    assert is_code_page(page)
    model = type(root_device.user)
    assert not model.objects.filter(username="newcomer").exists()
    assert answer(root, url, page, totp_code(root_device)).status_code == 302
    assert model.objects.filter(username="newcomer").exists()


def test_an_owner_cannot_reach_the_user_pages(org, owner, web):
    """user.manage is for superusers: an organisation's owner is refused (not asked for a code)."""
    target = UserFactory(username="target")
    response = web.post(f"/admin/auth/user/{target.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403 and not is_code_page(response)
    assert type(target).objects.filter(pk=target.pk).exists()


# --- Invitations, with a user who has a factor --------------------------------------------------------
def test_reading_an_invitation_asks_no_code_revoking_it_does(org, owner, web, device):
    """The detail page is invitation.view (no code); revoking is membership.add: the code page, then
    the revocation, for a user who holds a factor."""
    invitation = InvitationFactory(organization=org, role="viewer", invited_by=owner)
    detail = web.get(f"/admin/tenancy/invitation/{invitation.pk}/change/")
    assert detail.status_code == 200 and "Revoke" in detail.content.decode()
    url = f"/admin/tenancy/invitation/{invitation.pk}/revoke/"
    page = web.post(url)
    assert is_code_page(page)
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None
    assert answer(web, url, page, totp_code(device)).status_code == 302
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None


def test_an_admin_with_a_factor_is_refused_an_owners_invitation_before_any_code(org, admin_user):
    """The role rule comes first: inviting an owner, or revoking an owner's invitation, is refused
    outright (no code asked, none used)."""
    device = TOTPDeviceFactory(user=admin_user)
    client = Client()
    client.force_login(admin_user)
    invite = client.post("/admin/tenancy/invitation/add/", {"email": "boss@firm.example", "role": "owner"})
    assert not is_code_page(invite)
    assert not Invitation.objects.filter(email="boss@firm.example").exists()
    invitation = InvitationFactory(organization=org, role="owner")
    revoke = client.post(f"/admin/tenancy/invitation/{invitation.pk}/revoke/")
    assert revoke.status_code == 403 and not is_code_page(revoke)
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None
    device.refresh_from_db()
    assert not AuditEvent.objects.filter(action__startswith="factor.step_up").exists()
