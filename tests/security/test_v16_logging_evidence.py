"""ASVS 5.0 level 2, chapter V16 (Security Logging), for the evidence pack (issue 17): a pack carries the
execution's audit events with their chain hashes, and ``verify_evidence`` finds a pack or a log that was
changed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from agents.runtime import execute
from tests.agents.runtime.conftest import make_agent, vat_agent, vat_kb  # noqa: F401 (fixtures)
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _verify(path) -> int:
    try:
        call_command("verify_evidence", str(path), stdout=StringIO())
    except CommandError as exc:
        return exc.returncode
    return 0


def test_v16_4_2_a_pack_whose_audit_trail_was_changed_does_not_verify(vat_agent, editor, tmp_path):  # noqa: F811
    """ASVS 5.0 V16.4.2: log integrity carried into the evidence — a pack verifies against the database
    (exit 0); the same pack with an audit event removed, or its hash or content edited, exits 1."""
    execution = execute(vat_agent, "Is the reverse charge relevant here?", actor=editor, source="api")
    pack = client_for(editor).get(reverse("execution-evidence", args=[execution.pk])).json()
    assert pack["audit_events"] and all(e["hash"] and "prev_hash" in e for e in pack["audit_events"])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(pack), encoding="utf-8")
    assert _verify(good) == 0
    for tamper in (
        lambda p: p.update(audit_events=[]),
        lambda p: p["audit_events"][0].update(hash="0" * 64),
        lambda p: p["audit_events"][0].update(action="agent.nothing"),
    ):
        changed = json.loads(json.dumps(pack))
        tamper(changed)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(changed), encoding="utf-8")
        assert _verify(bad) == 1
