"""ASVS 5.0 V1.3.12 (regular expressions free from exponential backtracking) for the patterns the firm
writes into evaluation cases: refused when saved, and time-limited when searched."""

from __future__ import annotations

import time

import pytest

from evaluations.checks import Outcome, regex_match
from evaluations.models import Case, Suite
from tests.conftest import client_for
from tests.factories import AgentFactory
from tests.support.api import assert_error


@pytest.mark.parametrize("pattern", ["(a+)+$", "(x+x+)+y", "^(\\w+\\s?)+$"])
def test_v1_3_12_a_case_with_a_catastrophic_pattern_is_refused(org, editor, pattern):
    """ASVS 5.0 V1.3.12: a regex check that backtracks catastrophically is refused (400 naming the
    check), so it never runs against an answer."""
    suite = Suite.objects.create(organization=org, agent=AgentFactory(organization=org), name="S")
    body = {"name": "Slow", "input": "Hi?", "checks": [{"kind": "regex", "pattern": pattern}]}
    response = client_for(editor).post(f"/api/v1/evaluation-suites/{suite.pk}/cases/", body, format="json")
    error = assert_error(response, 400, fields=["checks"])
    assert error["errors"]["checks"][0].startswith(
        "Check 1 (regex): The pattern takes too long on some inputs"
    )
    assert not Case.objects.exists()


def test_v1_3_12_a_search_stops_at_its_time_limit():
    """ASVS 5.0 V1.3.12: a search is bounded (100 ms) whatever the pattern and the answer: the check
    fails saying so instead of holding the worker."""
    answer = Outcome(status="completed", output="x" * 20_000)
    started = time.monotonic()
    passed, reason = regex_match({"pattern": r"(x+x+)+y", "ignore_case": False}, answer)
    assert time.monotonic() - started < 2
    assert not passed and "took longer than 100 ms" in reason
