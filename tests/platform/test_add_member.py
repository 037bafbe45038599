"""``manage.py add_member``: the site operator attaches any existing user, audited as the system."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _add(*args: str) -> str:
    out = StringIO()
    call_command("add_member", *args, stdout=out)
    return out.getvalue()


def test_a_member_of_another_organisation_is_attached_and_audited_as_the_system(org, other_org):
    rival = MembershipFactory(
        organization=other_org, role="owner", user=UserFactory(username="rival", email="Rival@Other.example")
    ).user
    assert _add(org.slug, "rival@other.example", "editor").strip() == "Added rival to demo-firm as editor."
    membership = Membership.objects.get(organization=org, user=rival)
    assert membership.role == "editor"
    assert Membership.objects.get(organization=other_org, user=rival).role == "owner"
    event = AuditEvent.objects.get(organization=org, action="membership.add", object_id=str(membership.pk))
    assert (event.actor_user, event.actor_api_key) == (None, None)


def test_refusals_name_what_to_fix(org, editor):
    UserFactory(username="gone", is_active=False)
    with pytest.raises(CommandError, match="Unknown organisation 'nope'. Known slugs: demo-firm."):
        _add("nope", editor.username, "viewer")
    with pytest.raises(CommandError, match="No active user has the username or e-mail address 'gone'"):
        _add(org.slug, "gone", "viewer")
    with pytest.raises(CommandError, match="already a member of Demo Firm"):
        _add(org.slug, editor.username, "viewer")
    with pytest.raises(CommandError, match="invalid choice: 'emperor'"):
        _add(org.slug, editor.username, "emperor")
    assert not AuditEvent.objects.filter(action="membership.add").exists()
