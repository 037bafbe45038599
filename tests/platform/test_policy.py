"""``prisma_glow.policy``: the table of operations, the object rules and the reasons it gives."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from prisma_glow import policy
from prisma_glow.admin.scoping import AdminAccess
from prisma_glow.api.tenancy import Access
from prisma_glow.tenancy.models import APIKey, Membership, Organization

ROLES = ["viewer", "editor", "admin", "owner"]


def member(role):
    return Access(organization=Organization(name="Demo", slug="demo"), role=role)


def key(*scopes):
    return Access(organization=Organization(name="Demo", slug="demo"), api_key=APIKey(scopes=list(scopes)))


# Written out from docs/api.md's table and the security issue, not read from ``policy.OPERATIONS``: a
# wrong row there (an admin key renaming the organisation, a read key reading the audit log) fails here.
# operation: (least member role, API-key scope, or None when no key may)
EXPECTED = {
    "agent.view": ("viewer", "read"),
    "agent.change": ("editor", "write"),
    "release.request": ("editor", "write"),
    "release.approve": ("admin", None),
    "release.refuse": ("admin", None),
    "agent.deprecate": ("editor", "write"),
    "agent.execute": ("editor", "execute"),
    "execution.view": ("viewer", "read"),
    "execution.feedback": ("viewer", "execute"),
    "tool.change": ("editor", "write"),
    "guardrail.delete": ("editor", "write"),
    "knowledge_base.delete": ("editor", "write"),
    "model_provider.view": ("viewer", "read"),
    "model_provider.change": ("admin", "admin"),
    "model_provider.test": ("admin", None),  # a staff page only (issue 18): no key ever
    "api_key.view": ("admin", "admin"),
    "api_key.create": ("admin", None),
    "api_key.rotate": ("admin", None),
    "api_key.revoke": ("admin", "admin"),
    "membership.view": ("viewer", "read"),
    "membership.add": ("admin", None),
    "membership.change_role": ("admin", None),
    "membership.remove": ("admin", None),
    "membership.grant_owner": ("owner", None),
    "organization.view": ("viewer", "read"),
    "organization.update": ("owner", None),
    "audit.view": ("admin", "admin"),
    "factor.step_up": ("viewer", None),
    "guide.view": ("viewer", None),
}


@pytest.mark.parametrize("operation", sorted(EXPECTED))
def test_the_table_says_what_the_documentation_says(operation):
    role, scope = EXPECTED[operation]
    assert (policy.OPERATIONS[operation].role, policy.OPERATIONS[operation].scope) == (role, scope)


@pytest.mark.parametrize("operation", sorted(policy.OPERATIONS))
def test_each_operation_needs_its_role_or_scope(operation):
    """Members from the operation's role up are allowed, those below refused; a key needs the scope
    (``admin`` implies every scope) and never gets an operation whose scope is ``None``."""
    rule = policy.OPERATIONS[operation]
    for role in ROLES:
        expected = policy.rank(role) >= policy.rank(rule.role)
        assert policy.allows(member(role), operation) is expected, (operation, role)
    if rule.scope is None:
        assert not policy.allows(key("read", "write", "execute", "admin"), operation)
    else:
        assert policy.allows(key(rule.scope), operation)
        assert policy.allows(key("admin"), operation)
        others = [s for s in ("read", "write", "execute") if s != rule.scope]
        assert not policy.allows(key(*others), operation)


def test_refusals_say_why():
    decision = policy.decide(member("editor"), "membership.add")
    assert (
        not decision and decision.reason == "Your role (editor) cannot add members; it needs admin or higher."
    )
    decision = policy.decide(key("read"), "agent.execute")
    assert decision.reason == "This API key lacks the 'execute' scope needed to run agents."
    decision = policy.decide(Access(organization=Organization(), role=None), "agent.view")
    assert decision.reason == "You are not a member of this organisation."


def test_anything_touching_an_owner_is_for_owners_alone():
    """Granting owner, changing or removing an owner's membership: owners yes, admins and keys no (keys
    change no membership at all)."""
    owners = Membership(role="owner")
    editors = Membership(role="editor")
    admin, owner, admin_key = member("admin"), member("owner"), key("admin")
    for operation in ("membership.add", "membership.change_role", "membership.remove"):
        decision = policy.decide(admin_key, operation, editors, role="editor")
        assert not decision and decision.code == policy.SESSION_REQUIRED
    assert policy.allows(admin, "membership.add", role="editor")
    assert not policy.allows(admin, "membership.add", role="owner")
    assert policy.allows(admin, "membership.change_role", editors, role="admin")
    assert not policy.allows(admin, "membership.change_role", editors, role="owner")
    assert not policy.allows(admin, "membership.change_role", owners, role="viewer")
    assert policy.allows(admin, "membership.remove", editors)
    assert not policy.allows(admin, "membership.remove", owners)
    assert policy.decide(admin, "membership.remove", owners).reason == (
        "Your role (admin) cannot grant, change or remove the owner role; it needs owner or higher."
    )
    assert policy.decide(admin_key, "membership.add", role="owner").reason == (
        "An API key cannot add members; a signed-in admin must do it."
    )
    assert policy.allows(owner, "membership.add", role="owner")
    assert policy.allows(owner, "membership.change_role", owners, role="viewer")
    assert policy.allows(owner, "membership.remove", owners)


def test_the_roles_a_member_may_grant():
    assert policy.grantable_roles(member("owner")) == ["owner", "admin", "editor", "viewer"]
    assert policy.grantable_roles(member("admin")) == ["admin", "editor", "viewer"]
    assert policy.grantable_roles(member("editor")) == []


def test_built_in_tools_are_read_only_for_everyone():
    builtin = SimpleNamespace(organization_id=None)
    own = SimpleNamespace(organization_id=7)
    for access in (
        member("owner"),
        key("admin"),
        AdminAccess(organization=None, role=None, is_superuser=True),
    ):
        assert policy.allows(access, "tool.view", builtin)
        assert policy.allows(access, "tool.change", own)
        decision = policy.decide(access, "tool.change", builtin)
        assert not decision and "read-only" in decision.reason
        assert not policy.allows(access, "tool.delete", builtin)


def test_both_doors_principals_are_accepted():
    """The API's Access and the admin's AdminAccess answer alike for the same role; a superuser in
    the staff UI may do anything a member may."""
    org = Organization(name="Demo", slug="demo")
    for role in ROLES:
        staff = AdminAccess(organization=org, role=role, is_superuser=False)
        for operation in policy.OPERATIONS:
            assert staff.may(operation) == member(role).may(operation), (role, operation)
    superuser = AdminAccess(organization=org, role=None, is_superuser=True)
    assert superuser.may("membership.add", role="owner") and superuser.may("audit.view")


def test_an_unknown_operation_is_an_error_not_a_refusal():
    with pytest.raises(KeyError, match="declare it"):
        policy.decide(member("owner"), "agent.launch")
