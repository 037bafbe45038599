"""``python manage.py release_budget_reservations [--org SLUG]``: release the budget reservations held
by runs that cannot still be going: finished, or still ``running`` longer than their agent's time
limit plus a minute (their process died mid-call: ``agents.models.run_is_live``).

Runs release such reservations themselves when a budget seems spent (before a run and before each
provider call), so this is for operators who want the dashboard's "reserved" figures true at once,
e.g. after a crash or a deploy that killed workers. Each organisation's release is audited
(``budget.release_reservations``).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.services import budget_release_stale
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = "Release the budget reservations of runs that finished or whose process died."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organisation's budgets.")

    def handle(self, *args, **options):
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organisation has the slug {options['org']!r}.")
        released = budget_release_stale(organization=organization)
        total = sum(released.values())
        for each, count in released.items():
            if count:
                self.stdout.write(f"{each.slug}: released {count} reservation(s).")
        self.stdout.write(f"Released {total} reservation(s) of runs that are no longer going.")
