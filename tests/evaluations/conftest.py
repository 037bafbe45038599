"""Evaluations tests: the runtime's VAT agent (tests/agents/runtime/conftest.py), a suite of its cases,
and tasks run at once (the immediate backend) unless a test runs the real worker."""

from __future__ import annotations

import pytest

from evaluations import services
from tests.agents.runtime import conftest as runtime
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login

# The runtime tests' fixtures: a VAT agent with knowledge, built-in tools and guardrails, released.
vat_kb, make_agent, vat_agent = runtime.vat_kb, runtime.make_agent, runtime.vat_agent

REVERSE_CHARGE_Q = "Who accounts for the VAT on cross-border B2B services?"


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    """Run ``django.tasks`` tasks as soon as they are enqueued (django.tasks resets its backends on
    ``setting_changed``); the worker test switches back to the database backend."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    return settings


@pytest.fixture
def suite(vat_agent):
    return services.suite_create(
        organization=vat_agent.organization, actor=None, agent=vat_agent, name="VAT regression"
    )


def add_case(suite, name, input, checks=(), **fields):
    return services.case_create(
        suite=suite, actor=None, name=name, input=input, checks=list(checks), **fields
    )


@pytest.fixture
def cases(suite):
    """Three cases the offline engine passes (one must pass) and one it fails."""
    return [
        add_case(
            suite,
            "Reverse charge",
            REVERSE_CHARGE_Q,
            [
                {"kind": "contains", "text": "customer accounts for the VAT"},
                {"kind": "cites_at_least", "count": 1},
            ],
            must_pass=True,
        ),
        add_case(
            suite,
            "Cites the manual",
            "What must every invoice show?",
            [{"kind": "cites_document", "document_title": "VAT manual"}, {"kind": "not_blocked"}],
        ),
        add_case(
            suite,
            "VAT computed",
            "What is the VAT on 1000 EUR at 19%?",
            [{"kind": "tool_called", "tool": "vat-calculator"}, {"kind": "number_within", "value": 190}],
        ),
        add_case(
            suite, "Impossible", "What must every invoice show?", [{"kind": "contains", "text": "canteen"}]
        ),
    ]


@pytest.fixture
def stranger_client(other_org):
    """An owner of another organisation, signed in to the admin."""
    stranger = UserFactory(username="stranger-owner", is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    return login(stranger)
