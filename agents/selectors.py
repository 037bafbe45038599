"""Reads of the agents app (HackSoft style: keyword-only ``<entity>_<verb>`` functions), shared by the
API, the admin and the runtime so that each read is written once."""

from __future__ import annotations

import json
from dataclasses import replace

from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.configuration import RunConfiguration
from agents.exceptions import AgentNotRunnable, PersonaNotFound
from agents.models import (
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentStatus,
    AgentTool,
    Budget,
    BudgetMetric,
    BudgetPeriod,
    BudgetUsage,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
    Release,
    ToolApproval,
    ToolApprovalStatus,
    period_bounds,
)
from agents.privacy import parse_mapping, shown_data, shown_text
from agents.releases import configuration_from, snapshot_of
from guardrails.engine import restore
from personas.models import Persona

#: Approved learning examples added to the prompt (most recent first).
MAX_LEARNING_EXAMPLES = 5


def persona_version_number(persona: Persona | int | str | None) -> int | None:
    """The persona version asked for (a ``Persona``, a number, or None for the active one), as a number;
    ``PersonaNotFound`` when it is not one."""
    if persona is None:
        return None
    version = persona.version if isinstance(persona, Persona) else persona
    try:
        return int(version)
    except (TypeError, ValueError):
        raise PersonaNotFound(f"Persona version {version!r} is not a number.")


#: What the agent's page and the console say of an agent without a PII guardrail.
IDENTIFIERS_SENT_NOTICE = (
    "This agent has no PII guardrail: client identifiers are sent to the provider as typed. "
    "Assign a PII guardrail (redact, block or warn) to screen everything the agent sends."
)


def agent_screens_identifiers(*, agent: Agent) -> bool:
    """Whether a run of ``agent`` passes the privacy boundary's PII screening: an enabled PII guardrail
    of its organisation is assigned (enabled), whatever its stages and action — the rule of
    ``agents.runtime.boundary.pii_guardrails``, read in one query."""
    return AgentGuardrail.objects.filter(
        agent=agent,
        enabled=True,
        guardrail__enabled=True,
        guardrail__kind="pii",
        guardrail__organization_id=agent.organization_id,
    ).exists()


def agent_run_configuration(*, agent: Agent | int, persona: Persona | int | None = None) -> RunConfiguration:
    """The configuration a run of ``agent`` uses, read now from the database (uncached: the runtime
    keeps it per process, see ``agents.runtime.loading.load``).

    ``agent``: an ``Agent`` or its id. ``persona``: a persona version (a ``Persona`` or its version
    number) of this agent; None for the active one. Returns the agent (its organisation and provider
    loaded), the persona, the provider (the agent's, else the organisation's default, else None: the
    offline engine), the enabled tools, knowledge assignments and guardrails in assignment order (only
    the agent's organisation's, built-in tools included), and the last ``MAX_LEARNING_EXAMPLES``
    approved learning examples as (input, output) pairs, oldest first, and the budgets that apply
    (``agent_budgets``). Seven queries whatever the number of assignments.

    Raises ``AgentNotRunnable`` when the agent has no active persona (and none was asked for),
    ``PersonaNotFound`` when the version asked for does not exist or is not a number. Whether the
    agent may run (its status) is the caller's to check (``agents.runtime.loading.check_runnable``).
    """
    agent_id = agent.pk if isinstance(agent, Agent) else int(agent)
    version = persona_version_number(persona)
    # The persona row brings the agent, its organisation and provider along (one query).
    personas = Persona.objects.select_related("agent__organization", "agent__provider").filter(
        agent_id=agent_id
    )
    if version is None:
        found = personas.filter(is_active=True).order_by("-version").first()
        if found is None:
            name = agent.name if isinstance(agent, Agent) else Agent.objects.get(pk=agent_id).name
            raise AgentNotRunnable(
                f"The agent '{name}' has no active persona: activate a persona version first."
            )
    else:
        found = personas.filter(version=version).order_by("-version").first()
        if found is None:
            name = agent.name if isinstance(agent, Agent) else Agent.objects.get(pk=agent_id).name
            raise PersonaNotFound(f"The agent '{name}' has no persona version {version}.")
    configuration = _configuration(found.agent, found)
    return replace(configuration, budgets=tuple(agent_budgets(agent=found.agent)))


def release_run_configuration(*, release: Release | int) -> RunConfiguration:
    """The configuration a run of ``release`` (a ``Release`` or its id) uses: its snapshot, with the
    live agent, provider, knowledge bases and tools' secrets (``agents.releases.configuration_from``),
    and the budgets that apply. Five queries at most."""
    if not isinstance(release, Release) or "agent" not in release._state.fields_cache:
        release = Release.objects.select_related("agent__organization").get(
            pk=release.pk if isinstance(release, Release) else release
        )
    agent = release.agent
    return configuration_from(release, agent, budgets=tuple(agent_budgets(agent=agent)))


def release_contents(*, agent: Agent) -> tuple[dict, list[dict]]:
    """What a new release of ``agent`` holds: the snapshot of its draft (the live rows, the active
    persona) and its examples' mappings (``agents.releases.snapshot_of``). ``AgentNotRunnable`` when
    the agent has no active persona."""
    configuration = agent_run_configuration(agent=agent)
    return snapshot_of(configuration, approved_examples(agent=configuration.agent))


def agent_budgets(*, agent: Agent):
    """The budgets a run of ``agent`` must stay within: its organisation's (no agent) and its own, with
    the agent loaded (a refusal names it)."""
    return (
        Budget.objects.filter(organization_id=agent.organization_id)
        .filter(Q(agent__isnull=True) | Q(agent_id=agent.pk))
        .select_related("agent")
    )


def agent_run_configuration_with_persona(*, agent: Agent, persona) -> RunConfiguration:
    """The configuration a run of ``agent`` would use with ``persona`` in place of its own: the persona
    editor's preview, for a persona being edited (not saved; any object with ``system_prompt``,
    ``tone``, ``audience`` and ``language``), so that the preview shows what a run sends. Five queries."""
    return _configuration(agent, persona)


def _assigned_tool(assignment: AgentTool):
    """The assignment's tool (its own instance), carrying the assignment's approval setting, which
    ``Tool.needs_approval`` weighs against the tool's (``agents.runtime.approvals``)."""
    assignment.tool.assignment_requires_approval = assignment.requires_approval
    return assignment.tool


def _configuration(agent: Agent, persona) -> RunConfiguration:
    prefetch_related_objects(
        [agent],
        Prefetch(
            "tool_assignments",
            queryset=AgentTool.objects.filter(enabled=True, tool__is_enabled=True)
            .select_related("tool")
            .order_by("order", "id"),
        ),
        Prefetch(
            "knowledge_assignments",
            queryset=AgentKnowledge.objects.filter(enabled=True)
            .select_related("knowledge_base")
            .order_by("order", "id"),
        ),
        Prefetch(
            "guardrail_assignments",
            queryset=AgentGuardrail.objects.filter(enabled=True, guardrail__enabled=True)
            .select_related("guardrail")
            .order_by("order", "id"),
        ),
    )
    provider_row = agent.provider
    if provider_row is None:
        provider_row = ModelProvider.objects.filter(
            organization_id=agent.organization_id, is_default=True
        ).first()
    # Stored redacted, each with its own mapping: restored here, so that the privacy boundary
    # (``Boundary.examples``) screens the real values into the run's own placeholder numbering.
    examples = [
        (restore(question, parse_mapping(raw)), restore(answer, parse_mapping(raw)))
        for _, question, answer, raw in approved_examples(agent=agent)
    ]
    # Another organisation's object must never take part, whatever an assignment says.
    tools = tuple(
        _assigned_tool(a)
        for a in agent.tool_assignments.all()
        if a.tool.organization_id in (None, agent.organization_id)
    )
    knowledge = tuple(
        a
        for a in agent.knowledge_assignments.all()
        if a.knowledge_base.organization_id == agent.organization_id
    )
    guardrails = tuple(
        a.guardrail
        for a in agent.guardrail_assignments.all()
        if a.guardrail.organization_id == agent.organization_id
    )
    return RunConfiguration(agent, persona, provider_row, tools, knowledge, guardrails, tuple(examples))


def approved_examples(*, agent: Agent) -> list[tuple[int, str, str, str]]:
    """The last ``MAX_LEARNING_EXAMPLES`` approved learning examples of ``agent`` as stored (redacted),
    oldest first: (id, input, output, redactions) tuples, the redactions as decrypted JSON text."""
    rows = list(
        LearningExample.objects.filter(agent=agent, status=LearningExampleStatus.APPROVED)
        .order_by("-created_at", "-id")
        .values_list("pk", "input", "output", "redactions")[:MAX_LEARNING_EXAMPLES]
    )
    rows.reverse()
    return rows


def budget_unpriced_agents(*, organization_id: int) -> dict[int, str]:
    """The organisation's agents (not deprecated) whose runs cost nothing by the providers' prices:
    the offline engine (no provider) or a provider with no input and no output price. A cost budget
    limits nothing for them (``budget_limits_nothing_for``). {agent id: name}, one query."""
    return dict(
        Agent.objects.filter(organization_id=organization_id)
        .exclude(status=AgentStatus.DEPRECATED)
        .filter(Q(provider__isnull=True) | Q(provider__price_input_per_1k=0, provider__price_output_per_1k=0))
        .order_by("name", "pk")
        .values_list("pk", "name")
    )


def budget_limits_nothing_for(budget: Budget, unpriced: dict[int, str]) -> list[str]:
    """The names of the agents a cost budget cannot limit (their providers have no prices: their calls
    cost 0), from ``budget_unpriced_agents``; empty for a token budget."""
    if budget.metric != BudgetMetric.COST:
        return []
    if budget.agent_id:
        return [unpriced[budget.agent_id]] if budget.agent_id in unpriced else []
    return list(unpriced.values())


def budgets_with_usage(budgets, *, now=None):
    """``budgets`` (a queryset) with what each one's current period has consumed: ``current_used`` and
    ``current_reserved`` in counting units (``BudgetUsage``), 0 for a period nothing ran in yet. One
    query whatever the number of budgets (two correlated subqueries)."""
    now = now or timezone.now()
    day_start = period_bounds(BudgetPeriod.DAY, now)[0]
    month_start = period_bounds(BudgetPeriod.MONTH, now)[0]
    current = BudgetUsage.objects.filter(
        budget=OuterRef("pk"),
        period_start=Case(
            When(budget__period=BudgetPeriod.DAY, then=Value(day_start)),
            default=Value(month_start),
            output_field=DateTimeField(),
        ),
    )
    zero = Value(0, output_field=BigIntegerField())
    return budgets.annotate(
        current_used=Coalesce(Subquery(current.values("used")[:1]), zero),
        current_reserved=Coalesce(Subquery(current.values("reserved")[:1]), zero),
    )


# --- Approval of tool calls -------------------------------------------------------------------------


def tool_approvals_pending(*, organization):
    """The tool calls of ``organization`` waiting for a person's decision, the first to expire first,
    with their run and agent (one query, whatever their number): what the approval inbox lists."""
    return (
        ToolApproval.objects.filter(execution__organization=organization, status=ToolApprovalStatus.PENDING)
        .select_related("execution__agent")
        .order_by("expires_at", "id")
    )


def tool_approval_rows(approvals) -> list[dict]:
    """The approvals as the inbox's list shows them (``admin/agents/approvals/_tool_calls.html``): the
    question and the arguments with client identifiers masked (a list: ``agents.privacy``), the exact
    values on the call's own page."""
    return [
        {
            "approval": approval,
            "question": shown_text(approval.execution, approval.execution.input, visible=False),
            "arguments": json.dumps(
                shown_data(approval.execution, approval.effective_arguments, visible=False),
                ensure_ascii=False,
                sort_keys=True,
            ),
        }
        for approval in approvals
    ]
