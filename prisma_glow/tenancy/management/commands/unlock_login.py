"""``manage.py unlock_login USERNAME [--address IP]``: lift a sign-in lock (django-axes).

The operator's door for what owners do from the dashboard, and the only one for a username no
member has. Audited as done by the system, in each of the user's organisations.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from prisma_glow.tenancy.lockout import login_unlock


class Command(BaseCommand):
    help = (
        "Forget a username's failed sign-ins, lifting its locks (from one address with --address). "
        "Audited as done by the system."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USERNAME", help="The username as typed at sign-in.")
        parser.add_argument("--address", metavar="IP", help="Only the lock of this client address.")

    def handle(self, *args, username: str, address: str | None = None, **options):
        try:
            removed = login_unlock(username=username, ip_address=address, actor=None)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        where = f" from {address}" if address else ""
        if removed:
            self.stdout.write(f"Unlocked {username}{where}: {removed} record(s) of failed sign-ins removed.")
        else:
            self.stdout.write(f"No failed sign-ins recorded for {username}{where}: nothing to unlock.")
