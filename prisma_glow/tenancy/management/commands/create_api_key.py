"""``manage.py create_api_key --org SLUG --name NAME --scopes read,write,execute,admin
[--expires-in-days N]``: create an API key and print it, alone, on the last line."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from prisma_glow.tenancy.models import Organization, Scope
from prisma_glow.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organisation; the key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug.")
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--scopes", required=True, help="Comma-separated: " + ", ".join(Scope.values) + "."
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="Days until the key expires (default and maximum: PRISMA_GLOW_API_KEY_MAX_DAYS, 90).",
        )

    def handle(self, *args, org: str, name: str, scopes: str, expires_in_days: int | None, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            known = ", ".join(Organization.objects.order_by("slug").values_list("slug", flat=True)[:20])
            raise CommandError(f"Unknown organisation '{org}'. Known slugs: {known or '(none)'}.")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = sorted(set(scope_list) - set(Scope.values))
        if not scope_list or unknown:
            raise CommandError(
                f"Unknown scope(s): {', '.join(unknown) or '(none given)'}. Use any of: {', '.join(Scope.values)}."
            )
        expires_at = None
        if expires_in_days is not None:
            if expires_in_days < 1:
                raise CommandError("--expires-in-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        try:
            api_key, full_key = api_key_create(
                organization=organization, actor=None, name=name, scopes=scope_list, expires_at=expires_at
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages))
        expiry = f"expires {api_key.expires_at:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(
            f"Created API key '{api_key.name}' (pg_{api_key.prefix}) for {organization.slug} with scopes "
            f"{', '.join(api_key.scopes)}; it {expiry}. Store it now: it is not shown again."
        )
        self.stdout.write(full_key)
