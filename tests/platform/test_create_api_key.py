"""``manage.py create_api_key`` prints a working key alone on its last line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey
from tests.conftest import client_for


def run(*args) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue()


def test_prints_a_working_key_on_the_last_line(org):
    output = run(
        "--org", "demo-firm", "--name", "Portal", "--scopes", "read,execute", "--expires-in-days", "30"
    )
    full_key = output.strip().splitlines()[-1]
    assert full_key.startswith("pg_") and " " not in full_key
    key = APIKey.objects.get()
    assert key.scopes == ["read", "execute"] and key.name == "Portal" and key.expires_at is not None
    assert client_for(key=full_key).get("/api/v1/organization/").json()["slug"] == "demo-firm"
    assert AuditEvent.objects.filter(action="api_key.create", actor_label="").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--org", "nope", "--name", "X", "--scopes", "read"], "Unknown organisation 'nope'"),
        (["--org", "demo-firm", "--name", "X", "--scopes", "read,fly"], "Unknown scope(s): fly"),
        (["--org", "demo-firm", "--name", "X", "--scopes", ","], "Unknown scope(s)"),
        (["--org", "demo-firm", "--name", "X", "--scopes", "read", "--expires-in-days", "0"], "at least 1"),
        (["--org", "demo-firm", "--name", "", "--scopes", "read"], "blank"),
    ],
)
def test_clear_errors(org, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(*args)
    assert not APIKey.objects.exists()
