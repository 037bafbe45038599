"""Fixtures of the replay, compare and evidence tests: the runtime's VAT agent (released, active) with
its knowledge, and a second release of it that drops the disclaimer guardrail."""

from __future__ import annotations

import pytest

from agents.models import AgentGuardrail
from tests.agents.runtime.conftest import make_agent, vat_agent, vat_kb  # noqa: F401 (fixtures)
from tests.factories import release_now

IBAN = "DE89 3704 0044 0532 0130 00"
#: A question whose run retrieves passages, cites them, and holds a client identifier.
QUESTION = f"Is the reverse charge relevant for a payment from {IBAN}?"
#: A question the offline engine answers with a tool call (the VAT calculator).
CALCULATION = "What is the VAT on €1,000 at 19%?"


@pytest.fixture
def second_release(vat_agent):  # noqa: F811 (the fixture imported above)
    """Release 2 of ``vat_agent`` without the disclaimer guardrail; release 1 stays active."""
    AgentGuardrail.objects.filter(agent=vat_agent, guardrail__name="Disclaimer").delete()
    release = release_now(vat_agent, notes="No disclaimer", activate=False)
    vat_agent.refresh_from_db()
    return release
