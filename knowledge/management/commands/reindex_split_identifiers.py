"""``python manage.py reindex_split_identifiers [--organization SLUG] [--dry-run]``: re-index the
documents whose chunks cut a client identifier in two.

The chunker keeps identifiers whole (it asks the identifier finder registered with
``knowledge.screening``, guardrails' PII detector, where they are). Documents chunked before it did may
hold an identifier split between two chunks — an IBAN "DE89 3704 0044" in one and "0532 0130 00" in
the next, or an overlap starting inside one — whose halves the PII guardrail, screening each passage
alone, does not recognise, so they would reach a provider. This command finds them from their stored
chunks (no file is parsed to find them) and re-indexes each one (``document_reindex``, audited as a
system action); the previous chunks stay searchable until the worker has processed it. Run it once
after upgrading; ``--dry-run`` lists them only.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from knowledge.models import Document
from knowledge.screening import identifier_finder
from knowledge.selectors import document_list_cutting_identifiers
from knowledge.services import document_reindex
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = "Re-index the documents whose chunks cut a client identifier in two."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organisation's documents (its slug).")
        parser.add_argument("--dry-run", action="store_true", help="List the documents; re-index none.")

    def handle(self, *args, **options):
        identifiers = identifier_finder()
        if identifiers is None:
            raise CommandError(
                "No identifier finder is registered with knowledge (install the guardrails and agents "
                "apps): chunks are cut without regard to identifiers."
            )
        documents = Document.objects.all()
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organisation '{options['organization']}'.")
            documents = documents.filter(knowledge_base__organization=organization)
        found = 0
        for document, ordinals in document_list_cutting_identifiers(
            identifiers=identifiers, queryset=documents
        ):
            found += 1
            chunks = ", ".join(str(ordinal) for ordinal in ordinals)
            verb = "would re-index" if options["dry_run"] else "re-indexing"
            self.stdout.write(
                f"{document.knowledge_base.name} / {document.title} (document {document.pk}): an identifier "
                f"is cut in two across chunks {chunks}; {verb}."
            )
            if not options["dry_run"]:
                document_reindex(document=document, actor=None)
        if not found:
            self.stdout.write("No document cuts an identifier in two.")
        elif options["dry_run"]:
            self.stdout.write(
                f"{found} document(s) cut an identifier in two; run without --dry-run to re-index them."
            )
        else:
            self.stdout.write(f"{found} document(s) queued for re-indexing.")
