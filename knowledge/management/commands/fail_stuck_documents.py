"""``python manage.py fail_stuck_documents``: fail the documents left ``processing`` by a worker that
stopped (killed, out of memory, machine lost) without finishing them.

A document counts as stuck when it has been processing for longer than the processing time limit
(``PRISMA_GLOW_INGEST_TIMEOUT``) plus two minutes; it ends ``failed`` with the reason and can be
reindexed. Every ``process_document`` task runs the same check before it starts, so a running worker
clears stuck documents by itself; run this from cron when uploads are rare.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from knowledge.services import document_fail_stuck


class Command(BaseCommand):
    help = "Mark failed the documents stuck in processing past the processing time limit."

    def handle(self, *args, **options):
        failed = document_fail_stuck()
        if failed:
            ids = ", ".join(str(pk) for pk in failed)
            self.stdout.write(f"Marked {len(failed)} stuck document(s) failed: {ids}.")
        else:
            self.stdout.write("No document is stuck in processing.")
