"""``manage.py reset_factors USERNAME``: a lost phone, no backup code left — the operator's way back."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from prisma_glow.accounts.services import factors_reset


class Command(BaseCommand):
    help = (
        "Remove every second factor of USERNAME (authenticator app and backup codes) and end all their "
        "sessions, for a lost phone; at their next sign-in they set up a new app. Audited (factor.reset)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The username whose second factors to remove.")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is named “{username}”.")
        removed = factors_reset(user=user)
        if removed:
            self.stdout.write(
                f"Removed {removed} second factor device(s) of {username} and ended their sessions; they set "
                "up a new authenticator app at their next sign-in."
            )
        else:
            self.stdout.write(f"{username} had no second factor; their sessions were ended.")
