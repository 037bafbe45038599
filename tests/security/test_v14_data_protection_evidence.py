"""ASVS 5.0 level 2, chapter V14 (Data Protection), for the evidence pack and replay (issue 17): a pack
returns client identifiers only to whom the execution itself shows them."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from agents.runtime import execute
from tests.agents.runtime.conftest import make_agent, vat_agent, vat_kb  # noqa: F401 (fixtures)
from tests.conftest import client_for
from tests.factories import APIKeyFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

IBAN = "DE89 3704 0044 0532 0130 00"
QUESTION = f"Is the reverse charge relevant for a payment from {IBAN}?"


def test_v14_2_6_an_evidence_pack_shows_identifiers_only_to_whom_the_execution_does(
    vat_agent,  # noqa: F811 (the fixture imported above)
    org,
    editor,
    viewer,  # noqa: F811
):
    """ASVS 5.0 V14.2.6: only the minimum sensitive data — a viewer and another API key get the pack
    (JSON, HTML, the staff UI's download) with the IBAN masked (``DE89 •••• 3000``) and
    ``identifiers_masked`` true; the editor gets it in full."""
    execution = execute(vat_agent, QUESTION, actor=editor, source="api")
    url = reverse("execution-evidence", args=[execution.pk])
    other_key = APIKeyFactory(organization=org, scopes=["read"])
    for client in (client_for(viewer), client_for(key=other_key.plaintext)):
        pack = client.get(url).json()
        assert pack["identifiers_masked"] is True and "DE89 •••• 3000" in pack["execution"]["input"]
        assert "3704 0044" not in json.dumps(pack, ensure_ascii=False)
        assert "3704 0044" not in client.get(url + "?format=html").content.decode()
    download = login(viewer).get(reverse("admin:agents_execution_evidence", args=[execution.pk]))
    assert "3704 0044" not in download.content.decode()
    full = client_for(editor).get(url).json()
    assert full["identifiers_masked"] is False and full["execution"]["input"] == QUESTION
