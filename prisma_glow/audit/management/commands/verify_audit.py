"""``manage.py verify_audit [--org SLUG]``: check the audit log's hash chains.

Every organisation's chain (and the chain of events without an organisation) is walked in append
order, a few thousand rows at a time: each event's hash must be its content's
(``AuditEvent.compute_hash``) and its link the hash of the event before it. One line per chain — its
count and last event when intact, its first broken event otherwise — and exit status 1 when any chain
is broken (2 for a usage error, such as an unknown slug).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prisma_glow.audit.services import audit_chain_walk
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains (every organisation's, or one's): print the first broken "
        "event of each chain and exit 1 when one is found."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Verify this organisation's chain only.")

    def handle(self, *args, org: str | None = None, **options):
        if org is not None:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(
                    f"Unknown organisation '{org}': give the slug of an existing organisation.", returncode=2
                )
            chains = [(organization.slug, organization)]
        else:
            organizations = Organization.objects.order_by("slug").iterator()
            chains = [*((o.slug, o) for o in organizations), ("(no organisation)", None)]
        broken = 0
        total = 0
        for label, organization in chains:
            count, first, last = 0, None, None
            for event, reason in audit_chain_walk(organization):
                count += 1
                last = event
                if reason is not None and first is None:
                    first = (event, reason)
            total += count
            if first is not None:
                broken += 1
                event, reason = first
                self.stdout.write(
                    self.style.ERROR(
                        f"{label}: BROKEN at event {event.pk} ({event.at:%Y-%m-%d %H:%M:%S} {event.action}): "
                        f"{reason}. {count} events read."
                    )
                )
            elif count:
                self.stdout.write(
                    f"{label}: {count} events, intact (last: event {last.pk}, hash {last.hash[:16]}…)."
                )
            elif organization is not None:
                self.stdout.write(f"{label}: no events.")
        if broken:
            raise CommandError(
                f"{broken} of {len(chains)} audit chains broken ({total} events read): see the first broken event "
                "of each above; docs/security.md says what to do.",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(f"All audit chains intact: {len(chains)} chains, {total} events.")
        )
