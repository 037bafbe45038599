"""``python manage.py screen_chunks [--organization SLUG]``: store the screening of every chunk that has
none, or one made by an older detector, through knowledge's screening hook (``knowledge.screening``;
the agents app registers guardrails' prompt-injection detector there).

Ingestion screens new chunks itself; run this after upgrading (the detector's fingerprint changes with
its code, and agent runs scan unscreened passages live, which is slower but gives the same verdicts).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from knowledge.models import Chunk
from knowledge.screening import (
    passage_screen,
    registered,
    screening_has_signals,
    screening_is_current,
)
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = "Screen the knowledge chunks whose stored guardrail screening is missing or out of date."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organisation's chunks (its slug).")
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Chunks written per UPDATE (default 500)."
        )

    def handle(self, *args, **options):
        if registered() is None:
            raise CommandError(
                "No screener is registered with knowledge (install the guardrails app): chunks stay "
                "unscreened and are scanned when an agent run retrieves them."
            )
        chunks = Chunk.objects.order_by("pk").only("pk", "text", "screening")
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organisation '{options['organization']}'.")
            chunks = chunks.filter(document__knowledge_base__organization=organization)
        batch_size = max(1, options["batch_size"])
        started = time.monotonic()
        checked = screened = flagged = 0
        pending: list[Chunk] = []
        for chunk in chunks.iterator(chunk_size=2000):
            checked += 1
            if screening_is_current(screening=chunk.screening, text=chunk.text):
                continue
            chunk.screening = passage_screen(text=chunk.text)
            flagged += screening_has_signals(screening=chunk.screening)
            pending.append(chunk)
            if len(pending) >= batch_size:
                screened += Chunk.objects.bulk_update(pending, ["screening"])
                pending = []
        if pending:
            screened += Chunk.objects.bulk_update(pending, ["screening"])
        self.stdout.write(
            f"Screened {screened} of {checked} chunks in {time.monotonic() - started:.1f} s "
            f"({checked - screened} were up to date; {flagged} newly screened with prompt-injection signals)."
        )
