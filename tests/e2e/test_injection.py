"""Finding 1 of issue 13 replayed in a real browser: markup saved by an editor never acts in an
owner's browser.

The editor saves a tool through the API whose input_schema description is an htmx element that
posts to the membership page on load (and, in a variant, a plain form and an image with an
``onerror`` handler). The owner opens the tool's test page: every request the page makes is
recorded, none goes to the membership page, no membership is created, and the description is shown
as text. Further tests check the request gate of ``admin_ui.js`` directly (markup that slipped into
a page still cannot send a request) and sweep every staff page of a firm whose texts are all markup.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect
from rest_framework.test import APIClient

from prisma_glow.tenancy.models import Membership
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import (
    AgentFactory,
    AgentKnowledgeFactory,
    MembershipFactory,
    PersonaFactory,
    UserFactory,
)
from tests.platform.test_admin_markup import ADD_OWNER, FORM, HTMX_DIV, IMG, LONG, PoisonedWorld
from tools.models import Tool

pytestmark = pytest.mark.e2e


class Recorder:
    """Every request a page makes, and every dialog it opens (an ``alert`` would be one)."""

    def __init__(self, page):
        self.requests: list[tuple[str, str, dict]] = []
        self.dialogs: list[str] = []
        page.on("request", lambda r: self.requests.append((r.method, r.url, r.headers)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def to(self, path: str) -> list[tuple[str, str]]:
        return [(method, url) for method, url, _ in self.requests if path in url]


@pytest.fixture
def victim(org):
    """Olga, an owner of the firm: the one whose browser the attack needs."""
    user = UserFactory(username="olga", first_name="Olga", is_staff=True)
    MembershipFactory(user=user, organization=org, role="owner")
    return user


@pytest.fixture
def attacker(org):
    """Eddie, an editor of the firm: he may write tools, not grant roles."""
    user = UserFactory(username="eddie", first_name="Eddie", is_staff=True)
    MembershipFactory(user=user, organization=org, role="editor")
    return user


@pytest.fixture
def someone(org):
    """The account the attacker wants made an owner (it exists, so the attack would succeed)."""
    return UserFactory(username="someone", is_staff=True)


def save_tool_through_the_api(
    editor, *, description: str, schema_description: str, title: str = "Amount"
) -> Tool:
    client = APIClient()
    client.force_authenticate(editor)
    response = client.post(
        "/api/v1/tools/",
        {
            "name": "Invoice lookup",
            "url_template": "https://tools.example.com/invoices/{number}",
            "description": description,
            "input_schema": {
                "type": "object",
                "properties": {
                    "number": {"type": "string", "title": title, "description": schema_description},
                },
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return Tool.objects.get(pk=response.json()["id"])


def settle(page, linger_ms: int = 500) -> None:
    """Let htmx load and fire whatever ``load`` triggers the page holds (``networkidle`` is 500 ms
    without a request; ``linger_ms`` waits longer for triggers with a delay)."""
    page.wait_for_function("window.htmx !== undefined")
    page.wait_for_load_state("networkidle")
    if linger_ms:
        page.wait_for_timeout(linger_ms)


def test_an_editors_htmx_description_sends_no_request_from_an_owners_browser(
    context, page, live_server, victim, attacker, someone, watcher
):
    """Finding 1: the description is shown as text on the owner's tool test page, the page makes no
    request to the membership page and no membership is created; the page's own form still works."""
    tool = save_tool_through_the_api(
        attacker, description="Looks up an invoice.", schema_description=HTMX_DIV
    )
    members = set(Membership.objects.values_list("pk", flat=True))
    sign_in(context, live_server, victim)
    recorder = Recorder(page)
    page.goto(reverse("admin:tools_tool_test", args=[tool.pk]))
    settle(page)

    assert recorder.to(ADD_OWNER) == []
    assert set(Membership.objects.values_list("pk", flat=True)) == members
    assert not Membership.objects.filter(user=someone).exists()
    expect(page.locator(f'[hx-post="{ADD_OWNER}"]')).to_have_count(0)
    help_text = page.locator(".help", has_text=f'hx-post="{ADD_OWNER}"')
    expect(help_text).to_be_visible()
    assert help_text.inner_text().strip() == HTMX_DIV
    assert help_text.evaluate("e => e.closest('[hx-disable]') !== null")
    screenshot(page, "injection-01-tool-test-description-as-text")

    # The page's own htmx form still sends its request, with the CSRF header (invalid arguments:
    # the tool is not called, the form answers 400 with its errors).
    page.get_by_label("Or the arguments as JSON").fill("{not json")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/{tool.pk}/test/")
    ) as answer:
        page.get_by_role("button", name="Run").click()
    sent = answer.value.request
    assert sent.headers.get("hx-request") == "true" and sent.headers.get("x-csrftoken")
    assert answer.value.status == 400
    assert recorder.to(ADD_OWNER) == [] and recorder.dialogs == []
    assert watcher.take() == []


def test_plain_markup_in_a_tool_is_shown_escaped(
    context, page, live_server, victim, attacker, someone, watcher
):
    """The variant without htmx: a form posting to the membership page and an image whose onerror
    would run are shown as text; no such element exists, nothing runs, no request is made."""
    tool = save_tool_through_the_api(
        attacker, description=f"Lookup {IMG} {FORM}", schema_description=FORM, title=IMG
    )
    sign_in(context, live_server, victim)
    recorder = Recorder(page)
    page.goto(reverse("admin:tools_tool_test", args=[tool.pk]))
    settle(page)

    expect(page.locator("img[src='x']")).to_have_count(0)
    expect(page.locator(f"form[action='{ADD_OWNER}']")).to_have_count(0)
    expect(page.locator("p.pg-muted", has_text=IMG)).to_contain_text(f"Lookup {IMG} {FORM}")
    expect(page.locator(".help", has_text="<form")).to_have_text(FORM)
    expect(page.locator("label", has_text=IMG)).to_have_text(f"{IMG}:")  # the field's label
    assert recorder.to(ADD_OWNER) == [] and recorder.dialogs == []
    assert not Membership.objects.filter(user=someone).exists()
    assert watcher.take() == []  # an onerror handler would at least be a CSP violation


# Markup that slipped into a page (as if a template had let it through), added by the test.
SLIPPED_IN = """
([url, control]) => {
  const token = document.head.querySelector("meta[name='pg-htmx']").content;
  const vals = JSON.stringify({user_identifier: "someone", role: "owner"});
  const add = (attrs, parent) => {
    const el = document.createElement("div");
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    (parent || document.getElementById("content")).appendChild(el);
    return el;
  };
  const attack = {"hx-post": url, "hx-trigger": "load", "hx-vals": vals, "hx-swap": "none"};
  // 1. No token.
  htmx.process(add(attack));
  // 2. A forged token, with a forged token meta in the body as well.
  add({}).innerHTML = '<meta name="pg-htmx" content="forged">';
  htmx.process(add({...attack, "data-pg-htmx": "forged"}));
  // 3. The page's own token, inside user content: htmx does not process it, and a request
  //    issued for it by script is refused too.
  const box = add({"hx-disable": ""});
  const inside = add({...attack, "data-pg-htmx": token}, box);
  htmx.process(inside);
  htmx.ajax("POST", url, {source: inside, values: {user_identifier: "someone", role: "owner"}, swap: "none"});
  // 4. Control: the page's token outside user content is sent (the gate does not refuse everything).
  htmx.process(add({"hx-get": control, "hx-trigger": "load", "hx-swap": "none", "data-pg-htmx": token}));
  return token.length;
}
"""


def test_the_request_gate_refuses_elements_without_the_page_token_or_inside_user_content(
    context, page, live_server, victim, someone, watcher
):
    """admin_ui.js sends an htmx request only for an element with the page's token that is not
    inside user content: markup that slipped into a page (no token, a forged one, or the real one
    inside an hx-disable container) sends nothing; the control element with the token does."""
    sign_in(context, live_server, victim)
    tool = Tool.objects.get(slug="vat-calculator", organization=None)
    url = reverse("admin:tools_tool_test", args=[tool.pk])
    page.goto(url)
    settle(page)
    recorder = Recorder(page)
    with page.expect_request(lambda r: "control=1" in r.url) as control:
        assert page.evaluate(SLIPPED_IN, [ADD_OWNER, f"{url}?control=1"]) == 32
    assert control.value.headers.get("x-csrftoken")
    settle(page)
    assert recorder.to(ADD_OWNER) == []
    assert [m for m, _ in recorder.to("control=1")] == ["GET"]
    assert not Membership.objects.filter(user=someone).exists()
    assert watcher.take() == []


def test_no_staff_page_of_a_firm_whose_texts_are_markup_sends_a_request(
    context, page, live_server, org, victim, someone, watcher
):
    """Every staff page of a firm whose names, descriptions, schemas, documents, answers, traces and
    audit values are all markup, and a console run whose question, passages and answer carry it:
    no request to the membership page, no payload element, no dialog, no CSP violation."""
    world = PoisonedWorld(org, victim)
    agent = AgentFactory(organization=org, name="Console agent", slug="console-agent")
    PersonaFactory(agent=agent, system_prompt=LONG, is_active=True)
    AgentKnowledgeFactory(agent=agent, knowledge_base=world.kb)
    sign_in(context, live_server, victim)
    recorder = Recorder(page)
    failures = {}
    for name, url in world.pages().items():
        if name == "console":
            continue
        page.goto(url)
        # No linger over 48 pages (it cost 24 s): a payload is caught as an element whether or not
        # its trigger fired, and a request from one fired within networkidle's 500 ms is recorded.
        settle(page, linger_ms=0)
        found = {
            "htmx payload": page.locator(f'[hx-post="{ADD_OWNER}"]').count(),
            "img payload": page.locator("img[src='x']").count(),
            "form payload": page.locator(f"form[action='{ADD_OWNER}']").count(),
        }
        if any(found.values()):
            failures[name] = found
    assert failures == {}

    page.goto(reverse("admin:console:index") + f"?agent={agent.pk}")
    message = page.get_by_label("Message", exact=True)
    message.fill(f"reverse charge {LONG}")
    message.press("Enter")
    turn = page.locator(".console-turn--completed").last
    expect(turn).to_be_visible()
    expect(turn.locator(".console-question")).to_contain_text(HTMX_DIV)
    turn.locator(".console-trace > summary").click()
    expect(turn.locator(".console-step--retrieval")).to_contain_text(IMG)
    settle(page)
    expect(page.locator(f'[hx-post="{ADD_OWNER}"]')).to_have_count(0)
    expect(page.locator("img[src='x']")).to_have_count(0)
    # The turn's feedback form (the product's own htmx) still works in place.
    turn.get_by_role("button", name="Thumbs up: helpful").click()
    expect(turn.get_by_role("status")).to_contain_text("helpful")
    screenshot(page, "injection-02-console-markup-as-text")

    assert recorder.to(ADD_OWNER) == [] and recorder.dialogs == []
    assert not Membership.objects.filter(user=someone).exists()
    assert watcher.take() == []
    feedback_url = reverse("admin:console:feedback", args=[turn.get_attribute("data-execution-id")])
    assert [m for m, _ in recorder.to(feedback_url)] == ["POST"]
