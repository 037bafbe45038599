"""Finding 8: no organisation attaches another organisation's users, whichever door it uses.

The service refuses them with the same error as an unknown user; only the system (``actor=None``
with ``allow_members_elsewhere=True``, the operator's ``manage.py add_member``) attaches anyone.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import Membership
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rival(other_org):
    return MembershipFactory(
        organization=other_org, role="owner", user=UserFactory(username="rival", email="rival@other.example")
    ).user


def _refusal(exc: pytest.ExceptionInfo) -> dict:
    return {field: [(e.message, e.code) for e in errors] for field, errors in exc.value.error_dict.items()}


def test_membership_add_refuses_another_organisations_user_for_users_and_keys(org, owner, rival):
    """Owners and admin keys get the refusal an unknown user gets (code does_not_exist: the API's 404)."""
    key = APIKeyFactory(organization=org, scopes=["admin"])
    for actor in (owner, key):
        with pytest.raises(ValidationError) as exc:
            services.membership_add(organization=org, actor=actor, user=rival, role="viewer")
        assert _refusal(exc) == {"user": [(services.USER_NOT_ADDABLE_MESSAGE, "does_not_exist")]}
    assert not Membership.objects.filter(organization=org, user=rival).exists()
    assert not AuditEvent.objects.filter(organization=org, action="membership.add").exists()


def test_membership_add_refuses_an_inactive_user(org, owner):
    gone = UserFactory(username="gone", is_active=False)
    with pytest.raises(ValidationError) as exc:
        services.membership_add(organization=org, actor=owner, user=gone, role="viewer")
    assert _refusal(exc) == {"user": [(services.USER_NOT_ADDABLE_MESSAGE, "does_not_exist")]}


def test_a_user_of_no_organisation_is_added(org, owner):
    newcomer = UserFactory(username="newcomer")
    membership = services.membership_add(organization=org, actor=owner, user=newcomer, role="editor")
    assert membership.role == "editor"
    assert AuditEvent.objects.get(action="membership.add", object_id=str(membership.pk)).actor_user == owner


def test_only_the_system_may_attach_a_member_of_another_organisation(org, owner, rival):
    """``allow_members_elsewhere`` is refused with a person as actor (a programming error)."""
    with pytest.raises(ValueError, match="Only the system"):
        services.membership_add(
            organization=org, actor=owner, user=rival, role="viewer", allow_members_elsewhere=True
        )
    membership = services.membership_add(
        organization=org, actor=None, user=rival, role="viewer", allow_members_elsewhere=True
    )
    event = AuditEvent.objects.get(action="membership.add", object_id=str(membership.pk))
    assert (event.actor_user, event.actor_api_key, event.actor_label) == (None, None, "")


def test_the_founder_of_a_new_organisation_becomes_its_owner_though_a_member_elsewhere(org, owner):
    """organization_create(owner=actor): a user adding themself is no one attached without consent."""
    new = services.organization_create(name="Second Firm", slug="second-firm", actor=owner, owner=owner)
    assert Membership.objects.get(organization=new, user=owner).role == "owner"


def test_user_find_finds_only_users_who_may_be_added(org, other_org, rival):
    colleague = MembershipFactory(
        organization=org, role="viewer", user=UserFactory(username="colleague")
    ).user
    MembershipFactory(organization=other_org, user=colleague)
    free = UserFactory(username="free", email="Free@Example.com")
    assert services.user_find("free", organization=org) == free
    assert services.user_find("free@example.COM", organization=org) == free
    assert services.user_find("rival", organization=org) is None
    assert services.user_find("rival@other.example", organization=org) is None
    # A member here is found (and then answered "already a member"), wherever else they belong.
    assert services.user_find("colleague", organization=org) == colleague
    # Without an organisation, a member of any organisation is someone else's.
    assert services.user_find("colleague", organization=None) is None
    assert services.user_find("rival", organization=org, allow_members_elsewhere=True) == rival


def test_user_find_by_a_shared_address_finds_no_one_and_a_username_wins(org):
    UserFactory(username="a", email="shared@example.com")
    UserFactory(username="b", email="SHARED@example.com")
    named = UserFactory(username="shared@example.com", email="other@example.com")
    assert services.user_find("shared@example.com", organization=org) == named
    named.delete()
    assert services.user_find("shared@example.com", organization=org) is None


def test_user_find_costs_one_query_for_an_unknown_and_a_foreign_user(org, rival, django_assert_num_queries):
    """The same work whatever the answer, so timing does not tell the two apart either."""
    for identifier in ("rival", "nobody", "rival@other.example", "nobody@other.example"):
        with django_assert_num_queries(1):
            assert services.user_find(identifier, organization=org) is None


def test_another_organisation_adds_the_same_user_only_through_the_system(org, other_org):
    """Once in one firm, a user cannot be attached by a second firm's owner."""
    user = UserFactory(username="mira")
    services.membership_add(organization=org, actor=None, user=user, role="viewer")
    third = OrganizationFactory(slug="third-firm")
    third_owner = UserFactory(username="third-owner")
    services.membership_add(organization=third, actor=None, user=third_owner, role="owner")
    with pytest.raises(ValidationError):
        services.membership_add(organization=third, actor=third_owner, user=user, role="viewer")
