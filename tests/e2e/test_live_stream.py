"""The console in a real browser shows a slowly streamed answer while the model is still writing,
with every demo guardrail assigned, and replaces a blocked answer by the guardrail's reason."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from guardrails.services import guardrail_create
from tests.factories import AgentFactory, AgentGuardrailFactory, ModelProviderFactory, PersonaFactory
from tests.support.slow_model import SlowModel, assign_demo_guardrails

pytestmark = pytest.mark.e2e

# Records every text that reaches the running turn's answer (to prove what was never shown).
ANSWER_OBSERVER = """
() => {
  window.__pgShown = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target instanceof Element && r.target.matches('[data-slot=answer]')) {
        for (const node of r.addedNodes) window.__pgShown.push(node.textContent);
      }
    }
  }).observe(document.getElementById('console-log'), {childList: true, subtree: true});
}
"""
FIRST = "The customer accounts for the VAT, e.g. under § 13b UStG. "
SECOND = "The invoice shows 1.000,00 EUR net and 19 % VAT. "
LAST = "Both VAT numbers must be on it."


@pytest.fixture
def slow_agent(org, httpserver, settings):
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    def build(sentences, *, delay=0.12, gated=False):
        provider = ModelProviderFactory(
            organization=org, kind="openai_compatible", base_url=httpserver.url_for("/v1"),
            api_key="sk-test", default_model="gpt-test", timeout_seconds=30, max_retries=0,
            price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("0"),
        )  # fmt: skip
        agent = AgentFactory(organization=org, name="VAT adviser", status="active", provider=provider)
        PersonaFactory(agent=agent, is_active=True)
        assign_demo_guardrails(agent)
        topics = guardrail_create(
            organization=org, actor=None, name="Topics in answers", kind="blocked_topics", action="block",
            applies_to_input=False, applies_to_output=True,
            config={"topics": [{"name": "Market abuse", "terms": ["insider trading"]}]},
        )  # fmt: skip
        AgentGuardrailFactory(agent=agent, guardrail=topics, order=20)
        model = SlowModel(sentences, delay=delay, gated=gated)
        httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(model)
        return agent, model

    return build


def test_the_console_shows_the_answer_while_the_model_writes(signed_in_page, slow_agent, watcher):
    page = signed_in_page
    # Gated: the model holds its second sentence until the test has seen the first on the page, so
    # "still writing" is a fact when it is checked, not a race against the model's delays.
    agent, model = slow_agent([FIRST, SECOND, LAST], gated=True)
    page.goto(reverse("admin:console:index") + f"?agent={agent.pk}")
    page.evaluate(ANSWER_OBSERVER)
    message = page.get_by_label("Message", exact=True)
    message.fill("Who pays the VAT?")
    message.press("Enter")
    running = page.locator(".console-turn--running [data-slot=answer]")
    expect(running).to_contain_text("e.g. under § 13b UStG.")
    assert model.finished is None  # the model is still writing
    expect(page.locator(".console-turn--running")).to_have_count(1)
    model.proceed(2)
    turn = page.locator(".console-turn--completed").last
    expect(turn).to_contain_text(LAST, timeout=30_000)
    assert model.gate_timeouts == 0
    expect(turn).to_contain_text("qualified professional")  # the demo's disclaimer, appended
    assert watcher.take() == []


def test_the_console_replaces_a_blocked_answer_by_the_reason(signed_in_page, slow_agent, watcher):
    page = signed_in_page
    agent, _ = slow_agent([FIRST, "Insider trading would pay off here. ", LAST], delay=0.05)
    page.goto(reverse("admin:console:index") + f"?agent={agent.pk}")
    page.evaluate(ANSWER_OBSERVER)
    message = page.get_by_label("Message", exact=True)
    message.fill("Who pays the VAT?")
    message.press("Enter")
    blocked = page.locator(".console-turn--blocked").last
    expect(blocked).to_contain_text("Topics in answers", timeout=30_000)
    shown = page.evaluate("window.__pgShown")
    assert FIRST in shown  # shown first, then retracted
    assert not any("Insider" in text for text in shown)
    assert any("Blocked by the guardrail 'Topics in answers'" in text for text in shown)
    assert watcher.take() == []
