"""Agent pages: the wizard, the registry's search, filters and bulk actions, the detail page's
lifecycle buttons and clone, persona versions and editor, and assignments."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages

from agents.activation import activation_request_approve
from agents.models import ActivationRequest, Agent, AgentStatus, ModelProvider
from personas.models import Persona
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolFactory,
    release_now,
)

pytestmark = pytest.mark.django_db

WIZARD = "/admin/agents/agent/wizard/"
PERSONA = {
    "persona_name": "Default",
    "system_prompt": "You are a senior VAT specialist. Cite the firm's guidance; never give a definitive opinion.",
    "tone": "precise",
    "audience": "tax managers",
    "language": "en",
    "temperature": "0.20",
    "max_tokens": "",
    "model_override": "",
}


# --- Wizard -----------------------------------------------------------------------------------

STEP_ITEM = re.compile(
    r'<li class="pg-step-(\w+)( pg-step-current)?"( aria-current="step")?>(.*?)</li>', re.S
)
CLASS_WORDS = {"todo": "not started", "done": "done", "attention": "needs attention"}


def step_states(response) -> list[tuple[str, str, bool]]:
    """The wizard's step list as a person (or a screen reader) reads it: each step's text ("1. Basics —
    needs attention"), its state in words, and whether it is the current step (aria-current="step").
    The colour class must agree with the words."""
    html = response.content.decode()
    block = html[html.index('<ol class="pg-steps"') :]
    block = block[: block.index("</ol>")]
    states = []
    for status, current_class, aria_current, inner in STEP_ITEM.findall(block):
        words = re.search(r'<span class="pg-step-state[^"]*">([^<]*)</span>', inner).group(1)
        assert CLASS_WORDS[status] == words and bool(current_class) == bool(aria_current)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", inner)).strip()
        states.append((text, words, bool(aria_current)))
    return states


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_wizard_creates_a_draft_agent_with_persona_and_assignments(staff_client, editor, org):
    """Mira's journey: basics → persona → tools → knowledge → guardrails → review → a draft agent."""
    tool = ToolFactory(organization=org, name="VAT number validator")
    kb = KnowledgeBaseFactory(organization=org, name="EU VAT guidance")
    pii = GuardrailFactory(organization=org, name="PII")
    injection = GuardrailFactory(organization=org, name="Prompt injection")

    response = staff_client.get(WIZARD)
    assert response.status_code == 200 and response.context["step"] == "basics"
    steps = [
        (
            "",  # "New agent" itself takes the basics
            {
                "name": "VAT adviser",
                "type": "tax",
                "description": "VAT questions",
                "owner": "",
                "provider": "",
                "model": "",
            },
        ),
        ("persona", PERSONA),
        ("tools", {"tools": [tool.pk]}),
        ("knowledge", {"knowledge_bases": [kb.pk]}),
        ("guardrails", {"guardrails": [pii.pk, injection.pk]}),
    ]
    for step, data in steps:
        response = staff_client.post(f"{WIZARD}{step}/" if step else WIZARD, data)
        assert response.status_code == 302, (step, response.content[:2000])
    review = staff_client.get(f"{WIZARD}review/")
    assert review.status_code == 200
    html = review.content.decode()
    assert "VAT adviser" in html and "EU VAT guidance" in html and "senior VAT specialist" in html

    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    agent = Agent.objects.get(name="VAT adviser")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/agents/agent/{agent.pk}/overview/"
    assert agent.status == AgentStatus.DRAFT and agent.organization == org and agent.owner == editor
    persona = agent.personas.get()
    assert persona.is_active and persona.tone == "precise"
    assert [a.tool for a in agent.tool_assignments.all()] == [tool]
    assert [a.knowledge_base for a in agent.knowledge_assignments.all()] == [kb]
    assert [a.guardrail for a in agent.guardrail_assignments.order_by("order")] == [pii, injection]
    actions = set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert {"agent.create", "persona.create", "agenttool.assign"} <= actions
    # The wizard is cleared afterwards: "New agent" offers nothing to continue, every step is to do.
    assert "agent_wizard" not in staff_client.session
    again = staff_client.get(WIZARD)
    assert again.status_code == 200 and "Continue the agent you started" not in again.content.decode()
    assert [state for _, state, _ in step_states(again)] == ["not started"] * 6


def test_wizard_back_and_forward_keep_what_was_typed(staff_client, org):
    staff_client.post(f"{WIZARD}basics/", {"name": "Audit helper", "type": "audit"})
    # Back from the persona step, with a half-written (invalid) prompt: kept anyway.
    response = staff_client.post(f"{WIZARD}persona/", {**PERSONA, "system_prompt": "Short", "_back": "1"})
    assert response["Location"].endswith("/wizard/basics/")
    basics = staff_client.get(f"{WIZARD}basics/").content.decode()
    assert 'value="Audit helper"' in basics
    persona = staff_client.get(f"{WIZARD}persona/").content.decode()
    assert "Short</textarea>" in persona


def test_wizard_validates_each_step_and_shows_errors_beside_fields(staff_client, org):
    AgentFactory(organization=org, name="VAT adviser")
    response = staff_client.post(f"{WIZARD}basics/", {"name": "vat adviser", "type": "tax"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "already exists in this organisation" in html
    # Django's error list carries the id the field's aria-describedby names: once, never twice.
    assert html.count('id="id_name_error"') == 1
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
    response = staff_client.post(f"{WIZARD}basics/", {"name": "", "type": "nonsense"})
    html = response.content.decode()
    assert (
        response.status_code == 400 and "This field is required." in html and "Select a valid choice" in html
    )
    staff_client.post(f"{WIZARD}basics/", {"name": "New one", "type": "tax"})
    response = staff_client.post(f"{WIZARD}persona/", {**PERSONA, "system_prompt": "Hi", "temperature": "3"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Write the system prompt" in html and "less than or equal to 2" in html


def test_wizard_refuses_another_organisations_tools(staff_client, org, other_org):
    foreign = ToolFactory(organization=other_org)
    staff_client.post(f"{WIZARD}basics/", {"name": "Agent", "type": "tax"})
    response = staff_client.post(f"{WIZARD}tools/", {"tools": [foreign.pk]})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_wizard_review_sends_back_to_an_unfinished_step(staff_client, org):
    staff_client.post(f"{WIZARD}basics/", {"name": "Agent", "type": "tax"})
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    assert response.status_code == 302 and response["Location"].endswith("/wizard/persona/")
    assert not Agent.objects.filter(name="Agent").exists()


def test_wizard_reset_and_unknown_step(staff_client, org):
    staff_client.post(f"{WIZARD}basics/", {"name": "Agent", "type": "tax"})
    assert staff_client.get(f"{WIZARD}reset/").status_code == 405
    staff_client.post(f"{WIZARD}reset/")
    assert "agent_wizard" not in staff_client.session
    assert staff_client.get(f"{WIZARD}nope/").status_code == 404


def test_a_duplicate_name_leaves_basics_needing_attention_until_it_is_fixed(staff_client, org):
    """Basics with a name already taken is not done: the step list says "needs attention" (in words,
    not colour alone), on the error page and when the step is opened again; fixed, it is done."""
    AgentFactory(organization=org, name="VAT adviser")
    response = staff_client.post(WIZARD, {"name": "VAT adviser", "type": "tax"})
    assert response.status_code == 400 and "already exists in this organisation" in response.content.decode()
    assert step_states(response)[0] == ("1. Basics — needs attention", "needs attention", True)
    assert all(words == "not started" for _, words, _ in step_states(response)[1:])

    # Opened again (the stored name judged again): still not done, the error beside the field.
    response = staff_client.get(f"{WIZARD}basics/")
    assert step_states(response)[0] == ("1. Basics — needs attention", "needs attention", True)
    assert 'id="id_name_error"' in response.content.decode()
    # The persona step is opened directly: Basics is named as the step to complete first.
    response = staff_client.get(f"{WIZARD}persona/")
    assert response.status_code == 200
    assert messages_of(response) == [
        "Step “Basics” needs attention: complete it before “Persona”. What you choose here is kept."
    ]
    assert step_states(response)[:2] == [
        ("1. Basics — needs attention", "needs attention", False),
        ("2. Persona — not started", "not started", True),
    ]

    response = staff_client.post(f"{WIZARD}basics/", {"name": "VAT adviser (Mira)", "type": "tax"})
    assert response.status_code == 302 and response["Location"].endswith("/wizard/persona/")
    response = staff_client.get(f"{WIZARD}persona/")
    assert messages_of(response) == []
    assert step_states(response)[:3] == [
        ("1. Basics — done", "done", False),
        ("2. Persona — not started", "not started", True),
        ("3. Tools — not started", "not started", False),
    ]
    html = response.content.decode()
    assert f'href="{WIZARD}basics/"' in html and f'href="{WIZARD}tools/"' not in html


def test_a_step_is_judged_when_shown_not_when_it_was_saved(staff_client, org):
    """A name free when Basics was saved and taken meanwhile by another agent makes Basics need
    attention again (and the review sends back to it, naming it); freed again, it is done."""
    staff_client.post(WIZARD, {"name": "Payroll helper", "type": "general"})
    staff_client.post(f"{WIZARD}persona/", PERSONA)
    assert step_states(staff_client.get(f"{WIZARD}tools/"))[0][1] == "done"

    other = AgentFactory(organization=org, name="payroll helper")
    response = staff_client.get(f"{WIZARD}tools/")
    assert [words for _, words, _ in step_states(response)[:3]] == ["needs attention", "done", "not started"]
    assert messages_of(response) == [
        "Step “Basics” needs attention: complete it before “Tools”. What you choose here is kept."
    ]
    response = staff_client.post(f"{WIZARD}tools/", {"tools": []}, follow=True)
    assert response.redirect_chain == [(f"{WIZARD}basics/", 302)]
    assert messages_of(response) == [
        "Your choices on “Tools” are kept. Step “Basics” needs attention: complete it before “Tools”."
    ]
    response = staff_client.get(f"{WIZARD}review/", follow=True)
    assert response.redirect_chain == [(f"{WIZARD}basics/", 302)]
    assert messages_of(response) == ["Step “Basics” needs attention: complete it before the review."]
    assert 'id="id_name_error"' in response.content.decode()
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"}, follow=True)
    assert response.redirect_chain == [(f"{WIZARD}basics/", 302)]
    assert messages_of(response) == ["Step “Basics” needs attention: complete it before creating the agent."]
    assert not Agent.objects.filter(name="Payroll helper").exists()

    other.delete()
    states = step_states(staff_client.get(f"{WIZARD}knowledge/"))
    assert [words for _, words, _ in states] == [
        "done",
        "done",
        "done",
        "not started",
        "not started",
        "not started",
    ]


def test_new_agent_after_an_abandoned_wizard_starts_at_step_one_with_nothing_carried_over(staff_client, org):
    """ "New agent" opens Basics empty with every step to do, whatever an earlier wizard left; it
    offers to continue that one (at its first unfinished step), and saving the new Basics drops it."""
    tool = ToolFactory(organization=org, name="VAT number validator")
    staff_client.post(WIZARD, {"name": "Abandoned", "type": "audit", "description": "half done"})
    staff_client.post(f"{WIZARD}persona/", PERSONA)
    staff_client.post(f"{WIZARD}tools/", {"tools": [tool.pk]})

    response = staff_client.get(WIZARD)
    html = response.content.decode()
    assert response.status_code == 200 and response.context["step"] == "basics"
    form = response.context["form"]
    assert not form.is_bound and 'value="Abandoned"' not in html and "half done</textarea>" not in html
    assert [words for _, words, _ in step_states(response)] == ["not started"] * 6
    assert step_states(response)[0][2] is True  # Basics is the current step
    assert "Continue the agent you started" in html and "(“Abandoned”)" in html
    assert f'href="{WIZARD}knowledge/"' in html  # where it stopped
    # Opening "New agent" discards nothing yet: the earlier wizard can still be continued.
    assert set(staff_client.session["agent_wizard"]) == {"basics", "persona", "tools"}

    response = staff_client.post(WIZARD, {"name": "Fresh start", "type": "tax"})
    assert response.status_code == 302 and response["Location"].endswith("/wizard/persona/")
    assert set(staff_client.session["agent_wizard"]) == {"basics"}
    persona = staff_client.get(f"{WIZARD}persona/")
    assert (
        persona.context["form"].is_bound is False and "senior VAT specialist" not in persona.content.decode()
    )
    tools = staff_client.get(f"{WIZARD}tools/")
    assert "checked" not in tools.content.decode()


def test_new_agent_with_an_invalid_start_keeps_the_earlier_wizard_out(staff_client, org):
    """An invalid Basics posted from "New agent" is shown with its errors (400) and is the only thing
    stored: the earlier wizard's later steps are gone, not mixed into the new one."""
    staff_client.post(WIZARD, {"name": "Earlier", "type": "tax"})
    staff_client.post(f"{WIZARD}persona/", PERSONA)
    response = staff_client.post(WIZARD, {"name": "", "type": "tax"})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert step_states(response)[0] == ("1. Basics — needs attention", "needs attention", True)
    assert set(staff_client.session["agent_wizard"]) == {"basics"}
    assert "Continue the agent you started" not in response.content.decode()


def test_opening_a_later_step_first_says_which_step_to_complete_and_keeps_the_choices(staff_client, org):
    """A later step opened before the earlier ones are done names the step to complete first; what
    is chosen there is kept and is there once the wizard reaches it."""
    kb = KnowledgeBaseFactory(organization=org, name="EU VAT guidance")
    response = staff_client.get(f"{WIZARD}knowledge/")
    assert response.status_code == 200
    assert messages_of(response) == [
        "Step “Basics” is not done yet: complete it before “Knowledge”. What you choose here is kept."
    ]
    html = response.content.decode()
    # The step to complete is a link; the steps after it are not.
    assert f'href="{WIZARD}basics/"' in html and f'href="{WIZARD}persona/"' not in html
    # Refused there (an unknown knowledge base): the errors, and again the step to complete first.
    response = staff_client.post(f"{WIZARD}knowledge/", {"knowledge_bases": ["999999"]})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert messages_of(response) == [
        "Step “Basics” is not done yet: complete it before “Knowledge”. What you choose here is kept."
    ]
    response = staff_client.post(f"{WIZARD}knowledge/", {"knowledge_bases": [kb.pk]}, follow=True)
    assert response.redirect_chain == [(f"{WIZARD}basics/", 302)]
    assert messages_of(response) == [
        "Your choices on “Knowledge” are kept. Step “Basics” is not done yet: complete it before “Knowledge”."
    ]
    staff_client.post(f"{WIZARD}basics/", {"name": "Agent", "type": "tax"})
    response = staff_client.post(f"{WIZARD}persona/", PERSONA)
    assert response["Location"].endswith("/wizard/tools/")
    response = staff_client.post(f"{WIZARD}tools/", {"tools": []})
    assert response["Location"].endswith("/wizard/knowledge/")
    html = staff_client.get(f"{WIZARD}knowledge/").content.decode()
    assert re.search(rf'value="{kb.pk}"[^>]*checked', html)


def test_the_wizard_is_closed_to_viewers(viewer_admin_client, org):
    """A viewer gets 403 from "New agent", every step and the review, by GET and by POST, and no
    wizard is stored for them."""
    for url in [WIZARD, f"{WIZARD}basics/", f"{WIZARD}tools/", f"{WIZARD}review/"]:
        assert viewer_admin_client.get(url).status_code == 403, url
        assert viewer_admin_client.post(url, {"name": "Sneaky", "type": "tax"}).status_code == 403, url
    assert "agent_wizard" not in viewer_admin_client.session
    assert not Agent.objects.filter(name="Sneaky").exists()


def test_the_wizard_offers_only_the_organisations_own_choices(staff_client, org, other_org):
    """Another organisation's providers, tools, knowledge bases and guardrails are never offered;
    one stored anyway (the wizard started in another organisation) makes its step need attention."""
    ours = {
        "provider": ModelProviderFactory(organization=org, name="Our provider"),
        "tools": ToolFactory(organization=org, name="Our tool"),
        "knowledge": KnowledgeBaseFactory(organization=org, name="Our guidance"),
        "guardrails": GuardrailFactory(organization=org, name="Our guardrail"),
    }
    theirs = {
        "provider": ModelProviderFactory(organization=other_org, name="Their provider"),
        "tools": ToolFactory(organization=other_org, name="Their tool"),
        "knowledge": KnowledgeBaseFactory(organization=other_org, name="Their guidance"),
        "guardrails": GuardrailFactory(organization=other_org, name="Their guardrail"),
    }
    html = staff_client.get(WIZARD).content.decode()
    assert "Our provider" in html and "Their provider" not in html
    staff_client.post(WIZARD, {"name": "Agent", "type": "tax"})
    staff_client.post(f"{WIZARD}persona/", PERSONA)
    for step in ("tools", "knowledge", "guardrails"):
        html = staff_client.get(f"{WIZARD}{step}/").content.decode()
        assert ours[step].name in html and theirs[step].name not in html, step
    response = staff_client.post(WIZARD, {"name": "Agent", "type": "tax", "provider": theirs["provider"].pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    # Stored in the session as if chosen elsewhere: judged against this organisation, not done.
    session = staff_client.session
    session["agent_wizard"] = {
        "basics": {"name": ["Agent"], "type": ["tax"]},
        "persona": {k: [v] for k, v in PERSONA.items()},
        "tools": {"tools": [str(theirs["tools"].pk)]},
    }
    session.save()
    response = staff_client.get(f"{WIZARD}knowledge/")
    assert [words for _, words, _ in step_states(response)[:3]] == ["done", "done", "needs attention"]
    assert staff_client.post(f"{WIZARD}review/", {"_create": "1"})["Location"].endswith("/wizard/tools/")
    assert not Agent.objects.filter(name="Agent").exists()
    assert ModelProvider.objects.filter(organization=other_org).count() == 1


def _store_wizard(client, org, count: int) -> None:
    """A complete wizard in the session choosing ``count`` tools, knowledge bases and guardrails."""
    chosen = {
        "tools": [ToolFactory(organization=org, name=f"Tool {i}").pk for i in range(count)],
        "knowledge_bases": [KnowledgeBaseFactory(organization=org, name=f"KB {i}").pk for i in range(count)],
        "guardrails": [GuardrailFactory(organization=org, name=f"Guardrail {i}").pk for i in range(count)],
    }
    session = client.session
    session["agent_wizard"] = {
        "basics": {"name": ["Counted"], "type": ["tax"]},
        "persona": {k: [v] for k, v in PERSONA.items()},
        "tools": {"tools": [str(pk) for pk in chosen["tools"]]},
        "knowledge": {"knowledge_bases": [str(pk) for pk in chosen["knowledge_bases"]]},
        "guardrails": {"guardrails": [str(pk) for pk in chosen["guardrails"]]},
    }
    session.save()


# Queries of each wizard page with a complete wizard stored (measured): the session, the user and
# their memberships, one per step judged (Basics' name, each chosen kind), the step's own choices.
QUERY_BOUND = {"": 11, "basics/": 11, "tools/": 11, "guardrails/": 11, "review/": 9}


@pytest.mark.parametrize("count", [1, 8])
def test_wizard_pages_take_a_constant_number_of_queries(
    staff_client, org, count, django_assert_max_num_queries
):
    """Judging every step at every page costs a fixed number of queries, however many tools,
    knowledge bases and guardrails are chosen (the same bound for 1 and for 8 of each)."""
    _store_wizard(staff_client, org, count)
    for url in [WIZARD, f"{WIZARD}basics/", f"{WIZARD}tools/", f"{WIZARD}guardrails/", f"{WIZARD}review/"]:
        with django_assert_max_num_queries(QUERY_BOUND[url.removeprefix(WIZARD)]):
            assert staff_client.get(url).status_code == 200, url


def test_add_agent_goes_to_the_wizard(staff_client):
    response = staff_client.get("/admin/agents/agent/add/")
    assert response.status_code == 302 and response["Location"] == WIZARD


# --- Registry ---------------------------------------------------------------------------------


def test_registry_search_filters_and_sorting(staff_client, org, editor):
    vat = AgentFactory(organization=org, name="VAT adviser", type="tax", status="active", owner=editor)
    AgentFactory(organization=org, name="Audit sampler", type="audit", status="draft")
    ExecutionFactory(agent=vat)
    ExecutionFactory(agent=vat)
    rows = staff_client.get("/admin/agents/agent/").context["cl"].result_list
    assert {a.name: a.run_total for a in rows} == {"VAT adviser": 2, "Audit sampler": 0}
    html = staff_client.get("/admin/agents/agent/?q=vat").content.decode()
    assert "VAT adviser" in html and "Audit sampler" not in html
    html = staff_client.get("/admin/agents/agent/?type__exact=audit").content.decode()
    assert "Audit sampler" in html and "VAT adviser" not in html
    html = staff_client.get("/admin/agents/agent/?status__exact=active").content.decode()
    assert "VAT adviser" in html and "Audit sampler" not in html
    html = staff_client.get(f"/admin/agents/agent/?owner={editor.pk}").content.decode()
    assert "VAT adviser" in html and "Audit sampler" not in html
    html = staff_client.get("/admin/agents/agent/?owner=none").content.decode()
    assert "Audit sampler" in html and "VAT adviser" not in html
    html = staff_client.get("/admin/agents/agent/?o=-1").content.decode()
    assert html.index("VAT adviser") < html.index("Audit sampler")
    assert 'class="pg-badge pg-badge-active"' in html


def test_registry_empty_state(staff_client, org):
    html = staff_client.get("/admin/agents/agent/").content.decode()
    assert "No agents yet" in html and "/admin/agents/agent/wizard/" in html


def test_bulk_activation_requests_deprecate_and_export(staff_client, org, other_org):
    """The bulk action requests the activation of each agent's newest release (four eyes: nothing
    goes live until approved); an agent without a release is reported."""
    ready = AgentFactory(organization=org, name="Ready")
    PersonaFactory(agent=ready, is_active=True)
    release_now(ready, activate=False)
    no_persona = AgentFactory(organization=org, name="No persona")
    response = staff_client.post(
        "/admin/agents/agent/",
        {"action": "request_activation_selected", "_selected_action": [ready.pk, no_persona.pk]},
        follow=True,
    )
    html = response.content.decode()
    ready.refresh_from_db()
    no_persona.refresh_from_db()
    assert ready.status == "draft" and no_persona.status == "draft"
    assert ActivationRequest.objects.get(agent=ready).status == "pending"
    assert "1 agents requested for activation" in html and "has no release yet" in html
    staff_client.post(
        "/admin/agents/agent/", {"action": "deprecate_selected", "_selected_action": [ready.pk]}
    )
    ready.refresh_from_db()
    assert ready.status == "deprecated"
    foreign = AgentFactory(organization=other_org, name="Foreign")
    response = staff_client.post(
        "/admin/agents/agent/",
        {"action": "export_csv", "_selected_action": [ready.pk, no_persona.pk, foreign.pk]},
    )
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert "Ready" in body and "No persona" in body and "Foreign" not in body
    assert body.splitlines()[0].startswith("id,name,slug,type,status")


def test_viewer_may_export_but_not_activate(viewer_admin_client, org):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    page = viewer_admin_client.get("/admin/agents/agent/").content.decode()
    assert "export_csv" in page and "request_activation_selected" not in page
    viewer_admin_client.post(
        "/admin/agents/agent/", {"action": "request_activation_selected", "_selected_action": [agent.pk]}
    )
    agent.refresh_from_db()
    assert agent.status == "draft" and not ActivationRequest.objects.exists()


# --- Settings form ----------------------------------------------------------------------------


def test_agent_settings_save_through_the_service(staff_client, org):
    agent = AgentFactory(organization=org, name="Old name")
    response = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        {
            "name": "New name",
            "slug": agent.slug,
            "type": "advisory",
            "description": "",
            "owner": "",
            "provider": "",
            "model": "",
            "max_tool_rounds": 5,
            "timeout_seconds": 120,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/admin/agents/agent/{agent.pk}/overview/"
    agent.refresh_from_db()
    assert agent.name == "New name" and agent.type == "advisory"
    event = AuditEvent.objects.get(action="agent.update")
    assert event.before["name"] == "Old name" and event.after["name"] == "New name"


def test_agent_settings_errors_stay_beside_the_fields(staff_client, org):
    AgentFactory(organization=org, name="Taken")
    agent = AgentFactory(organization=org, name="Mine")
    url = f"/admin/agents/agent/{agent.pk}/change/"
    data = {"name": "Mine", "slug": agent.slug, "type": "tax", "max_tool_rounds": 99, "timeout_seconds": 120}
    html = staff_client.post(url, data).content.decode()
    assert "less than or equal to 20" in html
    # A rule only the service knows (names are unique whatever their case) comes back beside the field.
    response = staff_client.post(url, {**data, "name": "taken", "max_tool_rounds": 5})
    html = response.content.decode()
    assert response.status_code == 200
    assert "An agent named &#x27;taken&#x27; already exists in this organisation." in html
    assert 'class="errorlist' in html and 'value="taken"' in html
    agent.refresh_from_db()
    assert agent.name == "Mine"


def test_deleting_an_agent_with_executions_is_refused_with_a_message(staff_client, org):
    agent = AgentFactory(organization=org)
    ExecutionFactory(agent=agent)
    response = staff_client.post(f"/admin/agents/agent/{agent.pk}/delete/", {"post": "yes"}, follow=True)
    assert "Cannot delete agent" in response.content.decode()
    assert Agent.objects.filter(pk=agent.pk).exists()


# --- Detail -----------------------------------------------------------------------------------


def test_detail_shows_summary_assignments_metrics_and_buttons(staff_client, world):
    html = staff_client.get(world.pages()["agent-detail"]).content.decode()
    assert world.agent.name in html and world.tool.name in html and world.kb.name in html
    assert world.guardrail.name in html
    assert f"/admin/console/?agent={world.agent.pk}" in html
    assert "lifecycle/activate/" in html and "Clone as a draft" in html
    assert "Request activation" in html and 'id="activation-pending"' in html
    assert "Success rate" in html and "50%" in html  # one completed, one failed


def test_lifecycle_buttons(staff_client, org, owner):
    """ "Request activation" records a pending request for the chosen release (nothing goes live until
    another admin or owner approves); deprecate retires the agent."""
    agent = AgentFactory(organization=org)
    url = f"/admin/agents/agent/{agent.pk}/lifecycle/"
    assert staff_client.get(url + "activate/").status_code == 405
    html = staff_client.post(url + "activate/", follow=True).content.decode()
    assert "has no release yet" in html
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent, activate=False)
    html = staff_client.post(url + "activate/", {"release": "9"}, follow=True).content.decode()
    assert "no release 9" in html
    html = staff_client.post(
        url + "activate/", {"release": "1", "notes": "Ready"}, follow=True
    ).content.decode()
    assert "Activation of release 1 requested" in html
    agent.refresh_from_db()
    assert agent.status == "draft"
    row = ActivationRequest.objects.get(agent=agent)
    assert row.status == "pending" and row.notes == "Ready"
    # The audit partner sees where the request came from, as for the API's events.
    event = AuditEvent.objects.get(action="activation_request.create")
    assert event.ip == "127.0.0.1"
    activation_request_approve(request=row, actor=owner)
    staff_client.post(url + "deprecate/")
    agent.refresh_from_db()
    assert agent.status == "deprecated"
    assert staff_client.post(url + "explode/").status_code == 404


def test_viewer_cannot_use_lifecycle_or_clone(viewer_admin_client, org):
    agent = AgentFactory(organization=org)
    assert viewer_admin_client.post(f"/admin/agents/agent/{agent.pk}/lifecycle/activate/").status_code == 403
    assert (
        viewer_admin_client.post(f"/admin/agents/agent/{agent.pk}/clone/", {"name": "x"}).status_code == 403
    )


def test_clone(staff_client, org):
    agent = AgentFactory(organization=org, name="Original")
    PersonaFactory(agent=agent, is_active=True)
    response = staff_client.post(f"/admin/agents/agent/{agent.pk}/clone/", {"name": "Copy"})
    clone = Agent.objects.get(name="Copy")
    assert response["Location"] == f"/admin/agents/agent/{clone.pk}/overview/"
    assert clone.personas.count() == 1 and clone.status == "draft"
    html = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/clone/", {"name": "copy"}, follow=True
    ).content.decode()
    assert "already exists" in html
    html = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/clone/", {"name": ""}, follow=True
    ).content.decode()
    assert "Give the copy a name" in html


# --- Personas ---------------------------------------------------------------------------------


def test_persona_versions_diff_and_activate(staff_client, world):
    url = world.pages()["persona-versions"]
    html = staff_client.get(f"{url}?a=1&b=2").content.decode()
    assert "v1 → v2" in html and 'You are a <mark class="pg-diff-mark">senior VAT specialist</mark>.' in html
    # Side by side: each changed row holds the old line on the left and the new one on the right.
    assert '<th colspan="2" scope="col">v1</th><th colspan="2" scope="col">v2</th>' in html
    assert 'class="pg-row-change"' in html and "pg-old pg-del" in html and "pg-new pg-add" in html
    fragment = staff_client.get(f"{url}?a=1&b=2", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="persona-diff" hx-disable>') and "<html" not in fragment
    same = staff_client.get(f"{url}?a=1&b=1")
    assert same.status_code == 400 and "Choose two different versions" in same.content.decode()
    staff_client.post(f"/admin/agents/agent/{world.agent.pk}/personas/{world.persona2.pk}/activate/")
    world.persona2.refresh_from_db()
    assert world.persona2.is_active
    assert (
        staff_client.get(
            f"/admin/agents/agent/{world.agent.pk}/personas/{world.persona2.pk}/activate/"
        ).status_code
        == 405
    )


def test_persona_editor_creates_a_version(staff_client, org):
    agent = AgentFactory(organization=org)
    response = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/personas/new/", {**PERSONA, "activate": "on"}
    )
    assert response.status_code == 302
    persona = agent.personas.get()
    assert persona.version == 1 and persona.is_active and persona.audience == "tax managers"


def test_editing_a_used_persona_creates_the_next_version(staff_client, org):
    agent = AgentFactory(organization=org)
    persona = PersonaFactory(agent=agent, is_active=True)
    ExecutionFactory(agent=agent, persona=persona)
    url = f"/admin/agents/agent/{agent.pk}/personas/{persona.pk}/edit/"
    page = staff_client.get(url).content.decode()
    assert "Saving creates version 2; version 1 stays as it is (used by 1 run)." in page
    assert (
        "{&#x27;role&#x27;" not in page and 'class="pg-message"' in page
    )  # the preview is not a flash message
    response = staff_client.post(
        url, {**PERSONA, "system_prompt": "You are a careful VAT specialist, always citing."}, follow=True
    )
    assert "saved as version 2" in response.content.decode()
    persona.refresh_from_db()
    assert persona.system_prompt.startswith("You are a careful assistant")
    new = Persona.objects.get(agent=agent, version=2)
    assert new.is_active and "always citing" in new.system_prompt


def test_persona_editor_validation(staff_client, org):
    agent = AgentFactory(organization=org)
    response = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/personas/new/",
        {**PERSONA, "system_prompt": "", "persona_name": "", "temperature": "-1", "max_tokens": "0"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("This field is required.") >= 2
    assert "greater than or equal to 0" in html and "greater than or equal to 1" in html
    assert not agent.personas.exists()


def test_persona_preview_assembles_the_system_message(staff_client, world):
    from agents import services

    services.learning_example_approve(example=world.example, actor=None)
    url = f"/admin/agents/agent/{world.agent.pk}/personas/preview/"
    response = staff_client.post(
        url,
        {"system_prompt": "You are <b>careful</b>.", "tone": "warm", "language": "de"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "You are &lt;b&gt;careful&lt;/b&gt;." in html and "Tone: warm." in html
    assert "Answer in this language: de." in html
    assert "cite them as [1], [2]" in html and "Use the tools" in html  # the agent has knowledge and tools
    assert world.example.input.replace("'", "&#x27;") in html  # approved examples only
    assert staff_client.get(url).status_code == 405


# --- Assignments ------------------------------------------------------------------------------


def test_tool_assignments_add_update_reorder_remove(staff_client, world, org):
    url = world.pages()["tool-assignments"]
    second = ToolFactory(organization=org, name="Second tool")
    response = staff_client.post(
        url, {"action": "add", "target": second.pk, "enabled": "on", "settings": '{"currency": "EUR"}'}
    )
    assert response.status_code == 302
    rows = list(world.agent.tool_assignments.order_by("order"))
    assert [a.tool for a in rows] == [world.tool, second] and rows[1].settings == {"currency": "EUR"}
    staff_client.post(url, {"action": "up", "assignment": rows[1].pk})
    assert [a.tool for a in world.agent.tool_assignments.order_by("order")] == [second, world.tool]
    staff_client.post(url, {"action": "update", "assignment": rows[1].pk, "settings": "{}"})
    rows[1].refresh_from_db()
    assert rows[1].enabled is False and rows[1].settings == {}
    response = staff_client.post(
        url, {"action": "remove", "assignment": rows[0].pk}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="assignments"')
    assert "was removed" in html
    assert list(world.agent.tool_assignments.values_list("tool", flat=True)) == [second.pk]


def test_assignment_validation_errors(staff_client, world, other_world):
    url = world.pages()["tool-assignments"]
    response = staff_client.post(url, {"action": "add", "target": world.tool.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    response = staff_client.post(url, {"action": "add", "target": other_world.tool.pk})
    assert response.status_code == 400
    response = staff_client.post(
        url, {"action": "update", "assignment": world.tool_assignment.pk, "settings": "{not json"}
    )
    assert response.status_code == 400 and "Not valid JSON" in response.content.decode()
    knowledge = world.pages()["knowledge-assignments"]
    response = staff_client.post(
        knowledge,
        {"action": "update", "assignment": world.knowledge_assignment.pk, "top_k": "0", "min_score": "-1"},
    )
    html = response.content.decode()
    assert response.status_code == 400 and "top_k" in html
    foreign = other_world.tool_assignment.pk
    assert staff_client.post(url, {"action": "remove", "assignment": foreign}).status_code == 404
    assert staff_client.get(f"/admin/agents/agent/{world.agent.pk}/assignments/nothing/").status_code == 404


def test_knowledge_and_guardrail_assignments(staff_client, world, org):
    kb = KnowledgeBaseFactory(organization=org, name="Memos")
    staff_client.post(
        world.pages()["knowledge-assignments"],
        {"action": "add", "target": kb.pk, "enabled": "on", "top_k": 8, "min_score": 0.1},
    )
    assignment = world.agent.knowledge_assignments.get(knowledge_base=kb)
    assert assignment.top_k == 8 and assignment.min_score == pytest.approx(0.1)
    staff_client.post(
        world.pages()["guardrail-assignments"],
        {"action": "remove", "assignment": world.guardrail_assignment.pk},
    )
    assert not world.agent.guardrail_assignments.exists()
