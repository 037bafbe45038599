"""``manage.py add_member ORG_SLUG USER ROLE``: add an existing user to an organisation.

The site operator's door for what organisation admins cannot do until invitations exist: attach a
user who already belongs to another organisation. The user is found by username or e-mail address;
the change is audited with no actor (the system).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from prisma_glow.tenancy.models import Organization, Role
from prisma_glow.tenancy.services import membership_add, user_find


class Command(BaseCommand):
    help = (
        "Add an existing user (username or e-mail address) to an organisation with a role, even one "
        "who belongs to another organisation. Audited as done by the system."
    )

    def add_arguments(self, parser):
        parser.add_argument("org", metavar="ORG_SLUG", help="The organisation's slug.")
        parser.add_argument("user", metavar="USER", help="The user's username or e-mail address.")
        parser.add_argument("role", metavar="ROLE", choices=Role.values, help=", ".join(Role.values) + ".")

    def handle(self, *args, org: str, user: str, role: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            known = ", ".join(Organization.objects.order_by("slug").values_list("slug", flat=True)[:20])
            raise CommandError(f"Unknown organisation '{org}'. Known slugs: {known or '(none)'}.")
        found = user_find(user, organization=organization, allow_members_elsewhere=True)
        if found is None:
            raise CommandError(
                f"No active user has the username or e-mail address '{user}' (or the address is shared "
                "by several users: give the username)."
            )
        try:
            membership = membership_add(
                organization=organization, actor=None, user=found, role=role, allow_members_elsewhere=True
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages))
        self.stdout.write(f"Added {found.get_username()} to {organization.slug} as {membership.role}.")
