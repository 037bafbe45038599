"""Organisation members over the API: adding one is inviting them, change role, remove; owners guarded."""

from __future__ import annotations

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Invitation, Membership
from tests.factories import MembershipFactory, UserFactory
from tests.support.api import APIResourceTests, assert_error

URL = "/api/v1/members/"


class TestMembershipAPI(APIResourceTests):
    model = Membership
    factory = MembershipFactory
    url = URL
    update_data = {"role": "editor"}
    invalid_data = {"email": "not-an-address", "role": "emperor"}
    write_role = "admin"
    write_scope = None  # members and roles are changed by people, never by a key

    def make_object(self, organization, parent=None):
        return MembershipFactory(organization=organization, role="viewer")

    def get_create_data(self, parent):
        return {"email": "new.colleague@example.com", "role": "editor"}

    def test_create(self):
        """Adding a member is inviting them (review of issue 16): 202, an invitation (audited), no
        membership until the colleague accepts."""
        client = self.writer()
        before = Membership.objects.count()
        response = client.post(URL, self.get_create_data(None), format="json")
        assert response.status_code == 202, response.json()
        assert response.json()["email"] == "new.colleague@example.com" and "link" not in response.json()
        invitation = Invitation.objects.get(organization=self.org, email="new.colleague@example.com")
        assert invitation.role == "editor" and invitation.accepted_at is None
        assert Membership.objects.count() == before
        assert AuditEvent.objects.filter(action="invitation.create", object_id=str(invitation.pk)).exists()

    def test_the_answer_never_tells_which_accounts_exist(self):
        """An address of a free account, of another firm's member, or of nobody: the same 202 (but for
        the address and the expiry), and no account is attached without its consent."""
        UserFactory(username="free", email="free@example.com")
        foreign = MembershipFactory(
            organization=self.other_org, user=UserFactory(username="rival", email="rival@other.example")
        )
        client = self.client_as("admin")
        shapes = set()
        for address in ("free@example.com", "rival@other.example", "nobody@example.com"):
            response = client.post(URL, {"email": address}, format="json")
            assert response.status_code == 202, response.json()
            body = response.json()
            shapes.add((tuple(sorted(body)), body["role"], body["message"].replace(address, "ADDRESS")[:40]))
        assert len(shapes) == 1, shapes
        assert Membership.objects.filter(organization=self.org).count() == 1  # the fixture's owner only
        assert not Membership.objects.filter(organization=self.org, user=foreign.user).exists()

    def test_the_old_body_with_a_username_is_pointed_to_inviting(self):
        """``{"user": …}`` (the direct add of before) is 400 with the same pointer whether or not the
        username exists; nothing is attached."""
        UserFactory(username="newcomer", email="newcomer@example.com")
        client = self.client_as("admin")
        bodies = [
            assert_error(client.post(URL, {"user": name}, format="json"), 400, fields=["user"])
            for name in ("newcomer", "no-such-user")
        ]
        assert bodies[0] == bodies[1] and "invitation" in bodies[0]["errors"]["user"][0]
        assert not Membership.objects.filter(organization=self.org, user__username="newcomer").exists()

    def test_only_an_owner_grants_changes_or_removes_the_owner_role(self):
        """Admins and admin keys cannot invite owners, make, demote or remove owners (403); owners can."""
        owner = MembershipFactory(organization=self.org, role="owner")
        viewer = self.make_object(self.org)
        for client in (self.client_as("admin"), self.client_as(scopes=["admin"])):
            assert_error(client.post(URL, {"email": "boss@example.com", "role": "owner"}, format="json"), 403)
            assert_error(client.patch(f"{URL}{viewer.pk}/", {"role": "owner"}, format="json"), 403)
            assert_error(client.patch(f"{URL}{owner.pk}/", {"role": "viewer"}, format="json"), 403)
            assert_error(client.delete(f"{URL}{owner.pk}/"), 403)
        owner_client = self.client_as("owner")
        invited = owner_client.post(URL, {"email": "boss@example.com", "role": "owner"}, format="json")
        assert invited.status_code == 202
        assert owner_client.patch(f"{URL}{owner.pk}/", {"role": "viewer"}, format="json").status_code == 200

    def test_last_owner_cannot_be_removed_or_demoted(self):
        """With one owner, removing or demoting them is a 409; with two, it works."""
        client = self.client_as("owner")
        me = Membership.objects.get(organization=self.org, role="owner")
        assert_error(client.delete(f"{URL}{me.pk}/"), 409)
        assert_error(client.patch(f"{URL}{me.pk}/", {"role": "admin"}, format="json"), 409, fields=["role"])
        assert Membership.objects.get(pk=me.pk).role == "owner"
        second = MembershipFactory(organization=self.org, role="owner")
        assert client.patch(f"{URL}{second.pk}/", {"role": "editor"}, format="json").status_code == 200
        assert_error(client.delete(f"{URL}{me.pk}/"), 409)

    def test_role_change_is_audited_with_before_and_after(self):
        member = self.make_object(self.org)
        response = self.writer().put(f"{URL}{member.pk}/", {"role": "admin"}, format="json")
        assert response.status_code == 200
        event = AuditEvent.objects.get(action="membership.update", object_id=str(member.pk))
        assert (event.before["role"], event.after["role"]) == ("viewer", "admin")
        assert event.actor_user.username.startswith("api-admin")
