"""``manage.py verify_evidence FILE``: check an evidence pack against the database (``agents.evidence``).

Prints one line per check (``OK`` or ``FAIL`` with what does not match) and exits 1 when anything does
not match, 2 when the file cannot be read as JSON. Read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.evidence import verify_pack


class Command(BaseCommand):
    help = (
        "Check an execution's evidence pack (JSON) against the database: the execution and its recorded "
        "fields, the release's content hash, each passage's document SHA-256, and each audit event's hash "
        "and chain link. Exits 1 on any mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The evidence pack, as downloaded (JSON).")

    def handle(self, *args, file, **options):
        try:
            pack = json.loads(Path(file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.", returncode=2) from exc
        except ValueError as exc:
            raise CommandError(f"{file} is not JSON ({exc}): is it an evidence pack?", returncode=2) from exc
        checks = verify_pack(pack)
        for check in checks:
            self.stdout.write(check.line())
        failed = [check for check in checks if not check.ok]
        if failed:
            raise CommandError(
                f"The pack does not match the database: {len(failed)} of {len(checks)} checks failed.",
                returncode=1,
            )
        self.stdout.write(f"The pack matches the database: {len(checks)} checks passed.")
