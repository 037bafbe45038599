"""Organisation members over the API: add by username or e-mail, change role, remove; owners guarded."""

from __future__ import annotations

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Membership
from tests.factories import MembershipFactory, UserFactory
from tests.support.api import APIResourceTests, assert_error

URL = "/api/v1/members/"


class TestMembershipAPI(APIResourceTests):
    model = Membership
    factory = MembershipFactory
    url = URL
    update_data = {"role": "editor"}
    invalid_data = {"user": "nobody-by-this-name", "role": "emperor"}
    write_role = "admin"
    write_scope = None  # members and roles are changed by people, never by a key
    unchecked_fields = ("user",)  # sent as a username, returned as the user's id

    def make_object(self, organization, parent=None):
        return MembershipFactory(organization=organization, role="viewer")

    def get_create_data(self, parent):
        user = UserFactory(username="new-colleague", email="new.colleague@example.com")
        return {"user": user.username, "role": "editor"}

    def test_add_by_email_case_insensitive(self):
        UserFactory(username="mira", email="Mira.Tax@example.com")
        response = self.writer().post(URL, {"user": "mira.tax@EXAMPLE.com"}, format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["username"] == "mira" and response.json()["role"] == "viewer"

    def test_add_existing_member_409(self):
        member = self.make_object(self.org)
        response = self.writer().post(URL, {"user": member.user.username, "role": "editor"}, format="json")
        assert_error(response, 409, fields=["user"])

    def test_only_an_owner_grants_changes_or_removes_the_owner_role(self):
        """Admins and admin keys cannot make, demote or remove owners (403); owners can."""
        owner = MembershipFactory(organization=self.org, role="owner")
        viewer = self.make_object(self.org)
        candidate = UserFactory(username="candidate")
        for client in (self.client_as("admin"), self.client_as(scopes=["admin"])):
            assert_error(client.post(URL, {"user": "candidate", "role": "owner"}, format="json"), 403)
            assert_error(client.patch(f"{URL}{viewer.pk}/", {"role": "owner"}, format="json"), 403)
            assert_error(client.patch(f"{URL}{owner.pk}/", {"role": "viewer"}, format="json"), 403)
            assert_error(client.delete(f"{URL}{owner.pk}/"), 403)
        owner_client = self.client_as("owner")
        assert (
            owner_client.post(URL, {"user": candidate.username, "role": "owner"}, format="json").status_code
            == 201
        )
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

    def test_another_organisations_user_is_answered_exactly_like_an_unknown_one(self):
        """Finding 8: a user of another firm is not attached; by username or e-mail address the answer
        is the same 404, word for word, as for a name or an address nobody has."""
        foreign = MembershipFactory(
            organization=self.other_org,
            role="owner",
            user=UserFactory(username="rival", email="Rival@Other.example"),
        )
        for client in (self.client_as("owner"), self.client_as("admin")):
            bodies = []
            for identifier in ("rival", "rival@other.example", "nobody-here", "nobody@other.example"):
                response = client.post(URL, {"user": identifier, "role": "viewer"}, format="json")
                bodies.append(assert_error(response, 404, fields=["user"]))
                assert "rival" not in response.content.decode().lower()
            assert all(body == bodies[0] for body in bodies), bodies
            assert "another organisation" in bodies[0]["message"]
        assert not Membership.objects.filter(organization=self.org, user=foreign.user).exists()
        assert Membership.objects.get(pk=foreign.pk).role == "owner"
        assert not AuditEvent.objects.filter(organization=self.org, action="membership.add").exists()

    def test_a_user_of_no_organisation_is_added_and_audited(self):
        """A user who belongs to no organisation (e.g. just created by the site operator) is added."""
        newcomer = UserFactory(username="newcomer", email="newcomer@example.com")
        response = self.client_as("admin").post(URL, {"user": "newcomer@example.com"}, format="json")
        assert response.status_code == 201, response.json()
        membership = Membership.objects.get(organization=self.org, user=newcomer)
        assert AuditEvent.objects.filter(action="membership.add", object_id=str(membership.pk)).exists()

    def test_a_member_who_also_belongs_elsewhere_is_already_a_member_409(self):
        """A colleague who also belongs to another firm answers 409 like every member, so that the
        answer does not tell that they belong elsewhere."""
        colleague = MembershipFactory(organization=self.org, role="viewer")
        MembershipFactory(organization=self.other_org, user=colleague.user, role="editor")
        response = self.client_as("admin").post(URL, {"user": colleague.user.username}, format="json")
        assert_error(response, 409, fields=["user"])

    def test_an_inactive_user_is_answered_like_an_unknown_one(self):
        UserFactory(username="left-the-firm", is_active=False)
        client = self.client_as("admin")
        unknown = assert_error(client.post(URL, {"user": "no-such-user"}, format="json"), 404)
        assert assert_error(client.post(URL, {"user": "left-the-firm"}, format="json"), 404) == unknown
