"""ASVS 5.0 chapter V1 (encoding and sanitization) for the audit explorer's CSV export (issue 18): a
value a spreadsheet would run as a formula is written as text, and values are exported as the log
stores them — identifiers masked when the event was written stay masked."""

from __future__ import annotations

import csv
import io

import pytest

from prisma_glow.audit.services import audit_record
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/admin/audit/auditevent/"


def export(client, **params) -> list[dict]:
    response = client.get(URL, {**params, "export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming  # streamed, not built in memory
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_v1_2_10_formula_cells_are_written_as_text(admin_role_client, org, editor, start):
    """ASVS 5.0 V1.2.10: CSV and formula injection — a cell beginning with = + - @, a tab or a carriage
    return gets a leading apostrophe (OWASP's escaping), in every column that carries stored text."""
    name = f'{start}HYPERLINK("https://evil.example","x")'
    agent = AgentFactory(organization=org, name=name)
    audit_record(organization=org, action="agent.update", actor=editor, obj=agent)
    (row,) = export(admin_role_client, agent=agent.pk)
    assert row["agent"] == "'" + name and row["object"] == "'" + name


def test_v14_2_6_masked_identifiers_stay_masked_in_the_export(admin_role_client, org, editor):
    """ASVS 5.0 V14.2.6 (minimum sensitive data returned): the export writes what the log stores —
    an identifier masked when the event was written (``agents.privacy``) is exported masked, never
    restored, even for an admin; the columns are fixed."""
    agent = AgentFactory(organization=org, name="VAT adviser")
    masked = "Refused: IBAN DE89 •••• 3000"
    audit_record(organization=org, action="agent.update", actor=editor, obj=agent, after={"error": masked})
    (row,) = export(admin_role_client, agent=agent.pk)
    assert masked in row["after"] and "DE89370400440532013000" not in row["after"]
    assert row["action_label"] == "Agent: update" and row["actor"] == editor.username
    assert list(row) == [
        "time", "actor", "action", "action_label", "agent", "object_type", "object_id",
        "object", "ip", "before", "after", "hash",
    ]  # fmt: skip
