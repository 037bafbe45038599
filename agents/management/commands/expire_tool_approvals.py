"""``python manage.py expire_tool_approvals [--org SLUG]``: expire the tool calls that waited for a
person's approval longer than ``PRISMA_GLOW_TOOL_APPROVAL_HOURS``; each run ends ``failed`` with that
reason (audited ``tool_approval.expire`` and ``agent.execute``).

The worker sweeps them before each resumed run, and a late decision expires its own request; run this
from a timer (cron, a systemd timer) so that runs nobody answers end on time even when nobody decides
anything.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.services import tool_approvals_expire
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = "Expire tool calls that waited for approval too long; their runs end failed."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organisation's runs.")

    def handle(self, *args, **options):
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organisation has the slug {options['org']!r}.")
        expired = tool_approvals_expire(organization=organization)
        self.stdout.write(f"Expired {expired} tool call(s) that waited for approval too long.")
