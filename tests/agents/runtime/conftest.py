"""Fixtures for the runtime tests: a VAT agent with knowledge, built-in tools and four guardrails."""

from __future__ import annotations

import pytest

from agents.models import AgentTool
from guardrails.models import Guardrail
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    AgentKnowledgeFactory,
    ChunkFactory,
    DocumentFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    PersonaFactory,
    release_now,
)
from tools.models import Tool

REVERSE_CHARGE = (
    "For B2B services supplied across EU borders the reverse charge applies. The customer accounts for "
    "the VAT in its own Member State. The invoice must state 'Reverse charge' and show the VAT numbers "
    "of both the supplier and the customer."
)
INVOICE_RULES = (
    "Every invoice must show the supplier's VAT identification number, the date and a sequential number."
)
CANTEEN = "The staff canteen serves lunch from noon until two o'clock."
DISCLAIMER = "This answer is not a definitive opinion: have it reviewed before relying on it."


def builtin(slug: str) -> Tool:
    return Tool.objects.get(organization__isnull=True, slug=slug)


@pytest.fixture
def vat_kb(org):
    kb = KnowledgeBaseFactory(organization=org, name="EU VAT guidance")
    manual = DocumentFactory(knowledge_base=kb, title="VAT manual", page_count=40)
    ChunkFactory(document=manual, ordinal=0, page=12, heading_path="Reverse charge", text=REVERSE_CHARGE)
    ChunkFactory(document=manual, ordinal=1, page=13, heading_path="Invoices", text=INVOICE_RULES)
    other = DocumentFactory(knowledge_base=kb, title="Office handbook")
    ChunkFactory(document=other, ordinal=0, page=2, text=CANTEEN)
    return kb


def guardrail(agent, order, **kwargs):
    """Assign a guardrail, shared with the organisation's other agents when one of that name exists."""
    existing = Guardrail.objects.filter(organization=agent.organization, name=kwargs["name"]).first()
    target = existing or GuardrailFactory(organization=agent.organization, **kwargs)
    return AgentGuardrailFactory(agent=agent, order=order, guardrail=target).guardrail


@pytest.fixture
def make_agent(org, vat_kb):
    """An active agent with an active persona, released (release 1 active); ``tools`` are built-in
    slugs; ``guards`` a preset. A test that changes the configuration afterwards and runs it through
    the API calls ``release_now(agent)`` again."""

    def make(
        *,
        status="active",
        tools=("vat-calculator", "vat-iban-validator"),
        knowledge=True,
        guards="all",
        **kwargs,
    ):
        agent = AgentFactory(
            organization=org, status=status, name=kwargs.pop("name", "VAT adviser"), **kwargs
        )
        PersonaFactory(
            agent=agent,
            is_active=True,
            system_prompt="You are a senior VAT specialist. Cite the firm's guidance.",
        )
        for order, slug in enumerate(tools):
            AgentTool.objects.create(agent=agent, tool=builtin(slug), order=order)
        if knowledge:
            AgentKnowledgeFactory(agent=agent, knowledge_base=vat_kb)
        if guards == "all":
            guardrail(agent, 0, name="PII", kind="pii", action="redact", applies_to_output=True, config={})
            guardrail(
                agent, 1, name="Prompt injection", kind="prompt_injection", action="block",
                applies_to_retrieval=True, config={},
            )  # fmt: skip
            guardrail(
                agent, 2, name="Citations", kind="citation_required", action="warn",
                applies_to_input=False, applies_to_output=True, config={},
            )  # fmt: skip
            guardrail(
                agent, 3, name="Disclaimer", kind="disclaimer", action="append",
                applies_to_input=False, applies_to_output=True, config={"text": DISCLAIMER},
            )  # fmt: skip
        if status == "active":
            release_now(agent)
        return agent

    return make


@pytest.fixture
def vat_agent(make_agent):
    return make_agent()
