"""Agent services: every audited write on agents, their assignments, providers and the learning loop.

The API viewsets, the admin and the management commands all call these functions, so an operation
behaves the same whichever door it comes through. Each is keyword-only, takes the ``actor`` (a user,
an API key or None for the system), runs in one transaction, validates with ``full_clean()`` and
appends an audit event with the object's state before and after.

Errors: ``django.core.exceptions.ValidationError`` for bad input (400 in the API) and
``prisma_glow.exceptions.ConflictError`` when the request clashes with the current state (409).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from agents.exceptions import AgentNotRunnable
from agents.models import (
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentStatus,
    AgentTool,
    Budget,
    BudgetReservation,
    Execution,
    Feedback,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
    ProviderKind,
    Rating,
    Release,
    ToolApproval,
    ToolApprovalStatus,
)
from agents.privacy import identifier_mapping
from agents.releases import content_hash
from agents.runtime import approvals
from agents.runtime.budgets import release_all_stale
from agents.runtime.pipeline import approved_arguments
from agents.runtime.providers import ConnectionCheck, get_provider
from agents.selectors import release_contents
from guardrails.engine import restore
from guardrails.masking import mask_data, mask_text, redact_texts
from personas.models import Persona
from personas.services import EDITABLE_FIELDS as PERSONA_FIELDS
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict
from prisma_glow.tenancy.models import APIKey, Membership, Organization
from tools.registry import ToolArgumentsInvalid

# --- Helpers ----------------------------------------------------------------------------------


def _actor_user(actor):
    """The user behind ``actor`` (None for an API key or the system)."""
    return actor if isinstance(actor, get_user_model()) else None


def _actor_api_key(actor):
    return actor if isinstance(actor, APIKey) else None


def _check_fields(fields: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise TypeError(f"Unknown {what} field(s): {', '.join(unknown)}")


def _full_clean(
    instance: models.Model,
    extra: dict[str, list[str]] | None = None,
    conflicts: dict[str, list[str]] | None = None,
) -> None:
    """Validate ``instance`` in the order a caller can act on.

    Field errors (``full_clean`` without constraints, merged with ``extra`` found beforehand) raise
    ``ValidationError`` (400); then clashes with existing rows (``conflicts``: a duplicate name, an
    assignment that exists) raise ``ConflictError`` (409); then the model's constraints are checked.
    """
    errors = {k: list(v) for k, v in (extra or {}).items()}
    try:
        instance.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, [])
            errors[field].extend(m for m in messages if m not in errors[field])
    if errors:
        raise ValidationError(errors)
    if conflicts:
        raise ConflictError(conflicts)
    instance.validate_unique()
    instance.validate_constraints()


def _unique_slug(model, organization, base: str, *, exclude_pk=None, fallback: str = "agent") -> str:
    base = (slugify(base) or fallback)[:70]
    taken = set(
        model.objects.filter(organization=organization, slug__startswith=base)
        .exclude(pk=exclude_pk)
        .values_list("slug", flat=True)
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


# --- Agents -----------------------------------------------------------------------------------

AGENT_FIELDS = (
    "name",
    "slug",
    "type",
    "description",
    "owner",
    "provider",
    "model",
    "max_tool_rounds",
    "timeout_seconds",
)


def _agent_errors(agent: Agent) -> dict[str, list[str]]:
    """Rules that need the database: owner and provider inside the organisation."""
    errors: dict[str, list[str]] = {}
    if (
        agent.owner_id is not None
        and not Membership.objects.filter(
            user_id=agent.owner_id, organization_id=agent.organization_id
        ).exists()
    ):
        errors["owner"] = ["The owner must be a member of the agent's organisation."]
    if agent.provider_id is not None and agent.provider.organization_id != agent.organization_id:
        errors["provider"] = ["The provider must belong to the agent's organisation."]
    return errors


def _agent_conflicts(agent: Agent) -> dict[str, list[str]]:
    """Another agent of the organisation with the same name or slug."""
    conflicts: dict[str, list[str]] = {}
    others = Agent.objects.filter(organization_id=agent.organization_id).exclude(pk=agent.pk)
    if agent.name and others.filter(name__iexact=agent.name).exists():
        conflicts["name"] = [f"An agent named '{agent.name}' already exists in this organisation."]
    if agent.slug and others.filter(slug=agent.slug).exists():
        conflicts["slug"] = [f"An agent with the slug '{agent.slug}' already exists in this organisation."]
    return conflicts


@retry_on_conflict
@transaction.atomic
def agent_create(*, organization, actor, name: str, **fields: Any) -> Agent:
    """Create a draft agent. The slug is derived from the name when not given (made unique)."""
    _check_fields(fields, AGENT_FIELDS, "agent")
    lock_for_write(organization=organization)
    if not fields.get("slug"):
        fields["slug"] = _unique_slug(Agent, organization, name)
    if "owner" not in fields:
        user = _actor_user(actor)
        is_member = (
            user is not None and Membership.objects.filter(user=user, organization=organization).exists()
        )
        fields["owner"] = user if is_member else None
    agent = Agent(organization=organization, name=name, status=AgentStatus.DRAFT, **fields)
    _full_clean(agent, _agent_errors(agent), _agent_conflicts(agent))
    agent.save()
    audit_record(
        organization=organization, action="agent.create", actor=actor, obj=agent, after=snapshot(agent)
    )
    return agent


@retry_on_conflict
@transaction.atomic
def agent_update(*, agent: Agent, actor, **fields: Any) -> Agent:
    """Edit an agent's settings (not its status: use ``agent_activate`` / ``agent_deprecate``)."""
    _check_fields(fields, AGENT_FIELDS, "agent")
    lock_for_write(organization=agent.organization_id)
    agent = (  # FOR UPDATE: the slug may change
        Agent.objects.select_for_update(of=("self",)).select_related("organization").get(pk=agent.pk)
    )

    def validate(agent: Agent) -> None:
        if not agent.slug:
            agent.slug = _unique_slug(Agent, agent.organization_id, agent.name, exclude_pk=agent.pk)
        _full_clean(agent, _agent_errors(agent), _agent_conflicts(agent))

    return audited_update(
        agent,
        organization=agent.organization,
        actor=actor,
        action="agent.update",
        fields=fields,
        validate=validate,
    )


@retry_on_conflict
@transaction.atomic
def agent_delete(*, agent: Agent, actor) -> None:
    """Delete an agent that has never run. One with executions keeps its records: deprecate it."""
    lock_for_write(organization=agent.organization_id, agent=agent, agent_key_change=True)
    count = Execution.objects.filter(agent=agent).count()
    if count:
        raise ConflictError(
            f"The agent '{agent.name}' has {count} execution(s) on record and cannot be deleted; "
            "deprecate it instead."
        )
    audit_record(
        organization=agent.organization,
        action="agent.delete",
        actor=actor,
        obj=agent,
        before=snapshot(agent),
    )
    # Its releases first: they hold persona versions (Release.persona is PROTECT, so that a version
    # in a release is never deleted on its own), which the agent's deletion cascades to. An agent
    # that never ran has no execution referring to a release. Agent.active_release protects the
    # active one: let it go first.
    Agent.objects.filter(pk=agent.pk).update(active_release=None)
    Release.objects.filter(agent=agent).delete()
    agent.delete()


def _lock_agent(agent: Agent) -> Agent:
    """Lock the organisation, then the agent's row, and return it read again (its organisation loaded)."""
    lock_for_write(organization=agent.organization_id)
    return (
        Agent.objects.select_for_update(no_key=True, of=("self",))
        .select_related("organization", "active_release")
        .get(pk=agent.pk)
    )


@retry_on_conflict
@transaction.atomic
def release_create(*, agent: Agent, actor, notes: str = "") -> Release:
    """Freeze the agent's draft — its active persona, provider and model, assignments with their
    settings, tool definitions, guardrail configurations and approved learning examples — as its next
    release (``agents.releases``). The draft keeps running in the console; nothing goes live until a
    release is activated.

    ``ConflictError`` when the agent has no active persona, or when the draft is exactly an existing
    release (same content hash): that release can be activated instead."""
    agent = _lock_agent(agent)
    if not isinstance(notes, str):
        raise ValidationError({"notes": ["Notes must be text."]})
    try:
        contents, redactions = release_contents(agent=agent)
    except AgentNotRunnable as exc:
        raise ConflictError(f"{exc} A release needs one.") from exc
    digest = content_hash(contents, redactions)
    same = Release.objects.filter(agent=agent, content_hash=digest).values_list("number", flat=True).first()
    if same is not None:
        raise ConflictError(
            f"Nothing has changed since release {same} of '{agent.name}': its content is the same. "
            f"Activate release {same} instead of creating a new one."
        )
    number = (Release.objects.filter(agent=agent).aggregate(n=Max("number"))["n"] or 0) + 1
    release = Release(
        organization_id=agent.organization_id,
        agent=agent,
        number=number,
        persona_id=contents["persona"]["id"],
        snapshot=contents,
        example_redactions=json.dumps(redactions) if any(redactions) else "",
        content_hash=digest,
        notes=notes.strip(),
        created_by=_actor_user(actor),
    )
    _full_clean(release)
    release.save(force_insert=True)
    audit_record(
        organization=agent.organization,
        action="release.create",
        actor=actor,
        obj=release,
        after={
            "agent": agent.pk,
            "number": number,
            "content_hash": digest,
            "persona_version": contents["persona"]["version"],
            "notes": release.notes,
        },
    )
    return release


def release_for(*, agent: Agent, number) -> Release:
    """The agent's release ``number``; ``ValidationError`` on ``release`` when there is none, coded
    ``does_not_exist`` (the API answers 404: the body names an object that is not there)."""
    try:
        return Release.objects.get(agent=agent, number=int(number))
    except (TypeError, ValueError, Release.DoesNotExist):
        raise ValidationError(
            {"release": [ValidationError(f"This agent has no release {number}.", code="does_not_exist")]}
        )


@retry_on_conflict
@transaction.atomic
def agent_activate(
    *, agent: Agent, actor, release: Release | None = None, approval: dict | None = None
) -> Agent:
    """Put ``release`` of the agent live (default: its newest release): the agent becomes active and
    its API runs run that release. Activating an earlier release is how a change is rolled back. The
    release's ``activated_at`` is set the first time: only a release once activated answers API runs.

    This is the internal step: people's doors go through an approved activation request
    (``agents.activation``), which passes ``approval`` (the request, the gates' evidence) into the
    audit event; ``seed_demo`` and data migrations call it directly as the system.

    ``ConflictError`` when the agent has no release yet (create one first), ``ValidationError`` when
    ``release`` is another agent's. Nothing changes (and nothing is audited) when the agent is already
    active on that release."""
    agent = _lock_agent(agent)
    if release is None:
        release = Release.objects.filter(agent=agent).order_by("-number").first()
        if release is None:
            raise ConflictError(
                f"The agent '{agent.name}' has no release yet: create a release of its configuration, "
                "then activate it."
            )
    elif release.agent_id != agent.pk:
        raise ValidationError({"release": ["That release belongs to another agent."]})
    if agent.status == AgentStatus.ACTIVE and agent.active_release_id == release.pk:
        return agent
    if release.activated_at is None:
        # Once live, a release may answer API runs for good (pinned by number after a rollback too).
        release.activated_at = timezone.now()
        Release.objects.filter(pk=release.pk, activated_at__isnull=True).update(
            activated_at=release.activated_at
        )
    previous = agent.active_release
    return audited_update(
        agent,
        organization=agent.organization,
        actor=actor,
        action="agent.activate",
        fields={"status": AgentStatus.ACTIVE, "active_release": release},
        validate=None,
        before_extra={"release": previous.number if previous else None},
        after_extra={
            "release": release.number,
            "release_hash": release.content_hash,
            **({"approval": approval} if approval is not None else {}),
        },
    )


@retry_on_conflict
@transaction.atomic
def agent_deprecate(*, agent: Agent, actor) -> Agent:
    """Retire an agent: it stops running through the API; its history stays readable."""
    lock_for_write(organization=agent.organization_id)
    agent = (
        Agent.objects.select_for_update(no_key=True, of=("self",))
        .select_related("organization")
        .get(pk=agent.pk)
    )
    if agent.status == AgentStatus.DEPRECATED:
        return agent
    return audited_update(
        agent,
        organization=agent.organization,
        actor=actor,
        action="agent.deprecate",
        fields={"status": AgentStatus.DEPRECATED},
        validate=None,
    )


@retry_on_conflict
@transaction.atomic
def agent_clone(*, agent: Agent, actor, name: str, slug: str = "") -> Agent:
    """Copy an agent as a new draft: its settings, every persona version (as fresh, unused versions
    with the same numbers and the same active one) and its tool, knowledge and guardrail assignments.
    Executions, feedback and learning examples stay with the original."""
    lock_for_write(organization=agent.organization_id)
    source = Agent.objects.select_related("organization").get(pk=agent.pk)
    clone = agent_create(
        organization=source.organization,
        actor=actor,
        name=name,
        slug=slug,
        type=source.type,
        description=source.description,
        provider=source.provider,
        model=source.model,
        max_tool_rounds=source.max_tool_rounds,
        timeout_seconds=source.timeout_seconds,
    )
    personas = [
        Persona(
            agent=clone,
            version=p.version,
            is_active=p.is_active,
            created_by=_actor_user(actor),
            **{f: getattr(p, f) for f in PERSONA_FIELDS},
        )
        for p in source.personas.order_by("version")
    ]
    Persona.objects.bulk_create(personas)
    AgentTool.objects.bulk_create(
        AgentTool(
            agent=clone,
            tool_id=a.tool_id,
            enabled=a.enabled,
            order=a.order,
            settings=a.settings,
            requires_approval=a.requires_approval,
        )
        for a in source.tool_assignments.all()
    )
    AgentKnowledge.objects.bulk_create(
        AgentKnowledge(
            agent=clone,
            knowledge_base_id=a.knowledge_base_id,
            enabled=a.enabled,
            order=a.order,
            top_k=a.top_k,
            min_score=a.min_score,
        )
        for a in source.knowledge_assignments.all()
    )
    AgentGuardrail.objects.bulk_create(
        AgentGuardrail(agent=clone, guardrail_id=a.guardrail_id, enabled=a.enabled, order=a.order)
        for a in source.guardrail_assignments.all()
    )
    audit_record(
        organization=clone.organization,
        action="agent.clone",
        actor=actor,
        obj=clone,
        before={"source_agent_id": source.pk, "source_name": source.name},
        after=snapshot(clone) | {"persona_versions": [p.version for p in personas]},
    )
    return clone


# --- Assignments ------------------------------------------------------------------------------
# One implementation for the three kinds of assignment (tools, knowledge bases, guardrails), each
# described by an ``AssignmentKind``; the API, the admin and the commands call the same four services.


@dataclass(frozen=True)
class AssignmentKind:
    """One kind of thing assigned to an agent: its through model, the field that names the assigned
    object (``target``), a label for messages and the settings a caller may change."""

    model: type[models.Model]
    target: str
    label: str
    settings_fields: tuple[str, ...]

    @property
    def action(self) -> str:
        """The prefix of its audit actions (``agenttool.assign``…)."""
        return self.model._meta.model_name


TOOL = AssignmentKind(AgentTool, "tool", "tool", ("enabled", "order", "settings", "requires_approval"))
KNOWLEDGE = AssignmentKind(
    AgentKnowledge, "knowledge_base", "knowledge base", ("enabled", "order", "top_k", "min_score")
)
GUARDRAIL = AssignmentKind(AgentGuardrail, "guardrail", "guardrail", ("enabled", "order"))
ASSIGNMENT_KINDS: dict[type[models.Model], AssignmentKind] = {
    k.model: k for k in (TOOL, KNOWLEDGE, GUARDRAIL)
}


def _target_errors(kind: AssignmentKind, agent: Agent, target) -> dict[str, list[str]]:
    organization_id = getattr(target, "organization_id", None)
    if kind is TOOL and organization_id is None:
        if not target.is_enabled:
            return {"tool": [f"The built-in tool '{target.name}' is disabled."]}
        return {}  # built-in tools are offered to every organisation
    if organization_id != agent.organization_id:
        return {kind.target: [f"This {kind.label} does not belong to the agent's organisation."]}
    return {}


def _lock_agent_of(row) -> None:
    """Lock the organisation, then the agent, of a row that belongs to an agent (an assignment, a
    learning example), before the row itself."""
    lock_for_write(organization=row.agent.organization_id, agent=row.agent)


@retry_on_conflict
@transaction.atomic
def assignment_create(
    *, kind: AssignmentKind, agent: Agent, actor, order: int | None = None, **values: Any
) -> models.Model:
    """Assign the object named by ``values[kind.target]`` (``tool=``, ``knowledge_base=``,
    ``guardrail=``) to ``agent``, with the kind's settings; appended last unless ``order`` is given.
    A tool may be the organisation's own or a built-in one; anything else must belong to the agent's
    organisation."""
    if kind.target not in values:
        raise TypeError(f"assignment_create() needs {kind.target}=")
    target = values.pop(kind.target)
    _check_fields(values, kind.settings_fields, f"{kind.label} assignment")
    lock_for_write(organization=agent.organization_id, agent=agent)
    if order is None:
        last = kind.model.objects.filter(agent=agent).aggregate(m=Max("order"))["m"]
        order = 0 if last is None else last + 1
    assignment = kind.model(agent=agent, order=order, **{kind.target: target}, **values)
    conflicts = {}
    if kind.model.objects.filter(agent=agent, **{kind.target: target}).exists():
        conflicts = {kind.target: [f"The {kind.label} '{target}' is already assigned to this agent."]}
    _full_clean(assignment, _target_errors(kind, agent, target), conflicts)
    assignment.save()
    audit_record(
        organization=agent.organization,
        action=f"{kind.action}.assign",
        actor=actor,
        obj=assignment,
        after=snapshot(assignment),
    )
    return assignment


@retry_on_conflict
@transaction.atomic
def assignment_update(*, assignment, actor, **fields: Any):
    """Change an assignment's settings (``enabled``, ``order`` and its kind's own, e.g. ``top_k``)."""
    kind = ASSIGNMENT_KINDS[type(assignment)]
    _check_fields(fields, kind.settings_fields, f"{kind.label} assignment")
    _lock_agent_of(assignment)
    assignment = (
        kind.model.objects.select_for_update(of=("self",))
        .select_related("agent__organization")
        .get(pk=assignment.pk)
    )
    return audited_update(
        assignment,
        organization=assignment.agent.organization,
        actor=actor,
        action=f"{kind.action}.update",
        fields=fields,
        validate=_full_clean,
    )


@retry_on_conflict
@transaction.atomic
def assignment_delete(*, assignment, actor) -> None:
    """Unassign: the assigned object stays, the agent no longer uses it."""
    kind = ASSIGNMENT_KINDS[type(assignment)]
    _lock_agent_of(assignment)
    audit_record(
        organization=assignment.agent.organization,
        action=f"{kind.action}.unassign",
        actor=actor,
        obj=assignment,
        before=snapshot(assignment),
    )
    assignment.delete()


@retry_on_conflict
@transaction.atomic
def assignment_reorder(*, kind: AssignmentKind, agent: Agent, actor, assignment_ids: Sequence[int]) -> list:
    """Set ``order`` from the position in ``assignment_ids``, which must list every assignment of the
    kind once."""
    lock_for_write(organization=agent.organization_id, agent=agent)
    current = {a.pk: a for a in kind.model.objects.select_for_update().filter(agent=agent)}
    ids = list(assignment_ids)
    if len(ids) != len(set(ids)):
        raise ValidationError({"assignments": ["Each assignment id may appear only once."]})
    if set(ids) != set(current):
        # The list does not match the agent's assignments (one was added or removed meanwhile).
        raise ConflictError(
            {
                "assignments": [
                    f"List each of the agent's {len(current)} {kind.label} assignment id(s) exactly once."
                ]
            }
        )
    before = {str(pk): a.order for pk, a in current.items()}
    for position, pk in enumerate(ids):
        current[pk].order = position
    kind.model.objects.bulk_update(current.values(), ["order"])
    audit_record(
        organization=agent.organization,
        action=f"{kind.action}.reorder",
        actor=actor,
        obj=agent,
        before={"order": before},
        after={"order": {str(pk): i for i, pk in enumerate(ids)}},
    )
    return [current[pk] for pk in ids]


# --- Providers --------------------------------------------------------------------------------

PROVIDER_FIELDS = (
    "name",
    "kind",
    "base_url",
    "api_key",
    "default_model",
    "price_input_per_1k",
    "price_output_per_1k",
    "timeout_seconds",
    "max_retries",
    "is_default",
)


# An OpenAI-compatible provider created without a URL talks to OpenAI itself.
OPENAI_BASE_URL = "https://api.openai.com/v1"


def _provider_defaults(provider: ModelProvider) -> None:
    if provider.kind == ProviderKind.OPENAI_COMPATIBLE and not provider.base_url:
        provider.base_url = OPENAI_BASE_URL


def _provider_conflicts(provider: ModelProvider) -> dict[str, list[str]]:
    others = ModelProvider.objects.filter(organization_id=provider.organization_id).exclude(pk=provider.pk)
    if provider.name and others.filter(name__iexact=provider.name).exists():
        return {"name": [f"A provider named '{provider.name}' already exists in this organisation."]}
    return {}


def _take_over_default(provider: ModelProvider) -> None:
    """One default per organisation: a provider marked default takes over, in the same transaction
    (rolled back with it when the provider turns out invalid)."""
    if provider.is_default:
        ModelProvider.objects.filter(organization_id=provider.organization_id, is_default=True).exclude(
            pk=provider.pk
        ).update(is_default=False)


@retry_on_conflict
@transaction.atomic
def provider_create(*, organization, actor, name: str, **fields: Any) -> ModelProvider:
    """Create a model provider; ``api_key`` is stored encrypted. ``is_default`` takes the default over.
    An OpenAI-compatible provider without ``base_url`` uses OpenAI's (``OPENAI_BASE_URL``)."""
    _check_fields(fields, PROVIDER_FIELDS, "provider")
    lock_for_write(organization=organization)
    provider = ModelProvider(organization=organization, name=name, **fields)
    _take_over_default(provider)
    _provider_defaults(provider)
    _full_clean(provider, conflicts=_provider_conflicts(provider))
    provider.save()
    audit_record(
        organization=organization,
        action="provider.create",
        actor=actor,
        obj=provider,
        after=snapshot(provider),
    )
    return provider


@retry_on_conflict
@transaction.atomic
def provider_update(*, provider: ModelProvider, actor, **fields: Any) -> ModelProvider:
    """Edit a provider. Leave ``api_key`` out to keep the stored key; pass "" to clear it."""
    _check_fields(fields, PROVIDER_FIELDS, "provider")
    lock_for_write(organization=provider.organization_id)
    provider = (
        ModelProvider.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=provider.pk)
    )

    def validate(provider: ModelProvider) -> None:
        _take_over_default(provider)
        _provider_defaults(provider)
        _full_clean(provider, conflicts=_provider_conflicts(provider))

    return audited_update(
        provider,
        organization=provider.organization,
        actor=actor,
        action="provider.update",
        fields=fields,
        validate=validate,
    )


@retry_on_conflict
@transaction.atomic
def provider_delete(*, provider: ModelProvider, actor) -> None:
    """Delete a provider no agent uses (``ConflictError`` otherwise); past executions keep their figures."""
    lock_for_write(organization=provider.organization_id)
    in_use = Agent.objects.filter(provider=provider).count()
    if in_use:
        raise ConflictError(
            f"The provider '{provider.name}' is used by {in_use} agent(s); point them at another provider first."
        )
    audit_record(
        organization=provider.organization,
        action="provider.delete",
        actor=actor,
        obj=provider,
        before=snapshot(provider),
    )
    provider.delete()


def provider_test_connection(*, provider: ModelProvider, actor) -> ConnectionCheck:
    """ "Test connection": ask the provider for its models, or for a one-token answer where it lists
    none, through the runtime's client, outbound guard and the provider's timeout (nothing around
    them), and record ``provider.test`` with the outcome, the method, the time and the error, never
    the key. The call is made outside any transaction: a slow provider holds no lock or connection."""
    check = get_provider(provider).check_connection()
    with transaction.atomic():
        audit_record(
            organization=provider.organization,
            action="provider.test",
            actor=actor,
            obj=provider,
            after=check.summary(),
        )
    return check


# --- Budgets ----------------------------------------------------------------------------------

BUDGET_FIELDS = ("agent", "metric", "period", "limit")
#: What a budget counts, fixed at creation (``budget_update``).
BUDGET_FIXED_FIELDS = ("agent", "metric", "period")
BUDGET_FIXED_MESSAGE = (
    "A budget's agent, metric and period cannot change: what it has counted would be read as "
    "something else. Delete the budget and create another."
)


def _pk_or_value(value):
    return value.pk if isinstance(value, models.Model) else value


def _budget_errors(budget: Budget) -> dict[str, list[str]]:
    if budget.agent_id is not None and budget.agent.organization_id != budget.organization_id:
        return {"agent": ["The agent must belong to the budget's organisation."]}
    return {}


def _budget_conflicts(budget: Budget) -> dict[str, list[str]]:
    """Another budget of the same organisation (or agent), metric and period."""
    others = Budget.objects.filter(
        organization_id=budget.organization_id,
        agent_id=budget.agent_id,
        metric=budget.metric,
        period=budget.period,
    ).exclude(pk=budget.pk)
    if budget.metric and budget.period and others.exists():
        whose = f"The agent '{budget.agent.name}'" if budget.agent_id else "The organisation"
        message = f"{whose} already has a {budget.period_adjective} {budget.metric} budget: change that one."
        return {"metric": [message], "period": [message]}
    return {}


@retry_on_conflict
@transaction.atomic
def budget_create(*, organization, actor, **fields: Any) -> Budget:
    """Create a budget: ``metric`` tokens or cost, ``period`` day or month, ``limit`` > 0, for the
    whole organisation (``agent`` None) or one of its agents. Runs count against it from now on
    (``agents.runtime.budgets``)."""
    _check_fields(fields, BUDGET_FIELDS, "budget")
    lock_for_write(organization=organization)
    budget = Budget(organization=organization, **fields)
    _full_clean(budget, _budget_errors(budget), _budget_conflicts(budget))
    budget.save()
    audit_record(
        organization=organization, action="budget.create", actor=actor, obj=budget, after=snapshot(budget)
    )
    return budget


@retry_on_conflict
@transaction.atomic
def budget_update(*, budget: Budget, actor, **fields: Any) -> Budget:
    """Change a budget's limit; what its current period has consumed stays counted. Its agent, metric
    and period are fixed at creation (``BUDGET_FIXED_FIELDS``): changing them would reinterpret what
    it has counted (tokens read as cost, a day's consumption as a month's, one agent's as another's),
    so another value is refused (``ConflictError``, a 409 through the API: the request is well formed
    but clashes with the budget as stored): delete the budget and create another."""
    _check_fields(fields, BUDGET_FIELDS, "budget")
    lock_for_write(organization=budget.organization_id)
    budget = Budget.objects.select_for_update(of=("self",)).select_related("organization").get(pk=budget.pk)
    fixed = {
        name: [BUDGET_FIXED_MESSAGE]
        for name in BUDGET_FIXED_FIELDS
        if name in fields
        and _pk_or_value(fields[name]) != getattr(budget, f"{name}_id" if name == "agent" else name)
    }
    if fixed:
        raise ConflictError(fixed, code="conflict")

    def validate(budget: Budget) -> None:
        _full_clean(budget, _budget_errors(budget), _budget_conflicts(budget))

    return audited_update(
        budget,
        organization=budget.organization,
        actor=actor,
        action="budget.update",
        fields=fields,
        validate=validate,
    )


@retry_on_conflict
@transaction.atomic
def budget_delete(*, budget: Budget, actor) -> None:
    """Delete a budget and what it counted; runs are no longer limited by it."""
    lock_for_write(organization=budget.organization_id)
    audit_record(
        organization=budget.organization,
        action="budget.delete",
        actor=actor,
        obj=budget,
        before=snapshot(budget),
    )
    budget.delete()


def budget_release_stale(*, organization=None, actor=None) -> dict:
    """Release the budget reservations of runs that cannot still be going (finished, or their process
    died: ``agents.models.run_is_live``) in every organisation, or in ``organization``; runs do it
    themselves when a budget seems spent, this is for operators (``manage.py
    release_budget_reservations``). Each organisation's release is audited
    (``budget.release_reservations``). Returns {organisation: reservations released}."""
    organizations = Organization.objects.filter(
        pk__in=BudgetReservation.objects.values("budget__organization")
    ).order_by("slug")
    if organization is not None:
        organizations = organizations.filter(pk=organization.pk)
    released = {}
    for each in organizations:
        with transaction.atomic():
            count = release_all_stale(organization=each)
            if count:
                audit_record(
                    organization=each,
                    action="budget.release_reservations",
                    actor=actor,
                    after={"released": count},
                )
        released[each] = count
    return released


# --- Feedback and learning examples -----------------------------------------------------------


@retry_on_conflict
@transaction.atomic
def feedback_create(
    *,
    execution: Execution,
    actor,
    rating: int,
    comment: str = "",
    correction: str = "",
) -> Feedback:
    """Record a thumbs up / thumbs down on an execution. A thumbs down with a correction proposes a learning example
    (the execution's input and the corrected answer) for review."""
    lock_for_write(organization=execution.organization_id)
    feedback = Feedback(
        execution=execution,
        rating=rating,
        comment=comment or "",
        correction=correction or "",
        user=_actor_user(actor),
        api_key=_actor_api_key(actor),
    )
    errors: dict[str, list[str]] = {}
    if correction and rating != Rating.DOWN:
        errors["correction"] = ["A correction goes with a thumbs down (rating -1)."]
    _full_clean(feedback, errors)
    feedback.save()
    # The log is append-only: the comment and correction go into it with identifiers masked.
    after = snapshot(feedback)
    known = identifier_mapping(execution).values()
    after.update({key: mask_text(after[key], known=known) for key in ("comment", "correction")})
    audit_record(
        organization=execution.organization,
        action="feedback.create",
        actor=actor,
        obj=feedback,
        after=after,
    )
    if rating == Rating.DOWN and feedback.correction.strip():
        learning_example_create(
            agent=execution.agent,
            actor=actor,
            input=execution.input,
            output=feedback.correction,
            source_feedback=feedback,
        )
    return feedback


LEARNING_FIELDS = ("input", "output")


@retry_on_conflict
@transaction.atomic
def learning_example_create(
    *,
    agent: Agent,
    actor,
    input: str,
    output: str,
    status: str = LearningExampleStatus.PROPOSED,
    source_feedback: Feedback | None = None,
) -> LearningExample:
    """Add an example (input and ideal answer) to an agent; proposed until someone approves it.

    Stored redacted: client identifiers become placeholders, their values go into the encrypted
    ``redactions`` (with those the source run's own mapping knows, for an example from feedback)."""
    lock_for_write(organization=agent.organization_id, agent=agent)
    known = identifier_mapping(source_feedback.execution) if source_feedback is not None else {}
    (input, output), mapping = redact_texts([input, output], known=known)
    example = LearningExample(
        organization_id=agent.organization_id,
        agent=agent,
        input=input,
        output=output,
        redactions=json.dumps(mapping) if mapping else "",
        status=status,
        source_feedback=source_feedback,
        created_by=_actor_user(actor),
    )
    _full_clean(example)
    example.save()
    audit_record(
        organization=agent.organization,
        action="learning_example.create",
        actor=actor,
        obj=example,
        after=snapshot(example),
    )
    return example


@retry_on_conflict
@transaction.atomic
def learning_example_update(*, example: LearningExample, actor, **fields: Any) -> LearningExample:
    """Edit an example's input or answer (given with the real values, as an authorised viewer sees
    them). An edited approved example goes back to review. The edited example is redacted again:
    the values it held keep their kind even where the detectors would not find them."""
    _check_fields(fields, LEARNING_FIELDS, "learning example")
    _lock_agent_of(example)
    example = (
        LearningExample.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=example.pk)
    )
    known = identifier_mapping(example)
    full = {key: restore(getattr(example, key), known) for key in LEARNING_FIELDS}
    if all(full[key] == value for key, value in fields.items()):
        return example
    full.update(fields)
    (question, answer), mapping = redact_texts([full["input"], full["output"]], known=known)
    changed: dict[str, Any] = {
        key: value
        for key, value in (("input", question), ("output", answer))
        if getattr(example, key) != value
    }
    if mapping != known:
        changed["redactions"] = json.dumps(mapping) if mapping else ""
    if example.status == LearningExampleStatus.APPROVED:
        changed["status"] = LearningExampleStatus.PROPOSED
    return audited_update(
        example,
        organization=example.organization,
        actor=actor,
        action="learning_example.update",
        fields=changed,
        validate=_full_clean,
    )


def _learning_example_set_status(example: LearningExample, actor, status: str) -> LearningExample:
    _lock_agent_of(example)
    example = (
        LearningExample.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=example.pk)
    )
    if example.status == status:
        return example
    return audited_update(
        example,
        organization=example.organization,
        actor=actor,
        action=f"learning_example.{'approve' if status == LearningExampleStatus.APPROVED else 'reject'}",
        fields={"status": status},
        validate=None,
    )


@retry_on_conflict
@transaction.atomic
def learning_example_approve(*, example: LearningExample, actor) -> LearningExample:
    """Approve an example: from now on it is shown to the agent's model as a few-shot example."""
    return _learning_example_set_status(example, actor, LearningExampleStatus.APPROVED)


@retry_on_conflict
@transaction.atomic
def learning_example_reject(*, example: LearningExample, actor) -> LearningExample:
    return _learning_example_set_status(example, actor, LearningExampleStatus.REJECTED)


@retry_on_conflict
@transaction.atomic
def learning_example_delete(*, example: LearningExample, actor) -> None:
    _lock_agent_of(example)
    audit_record(
        organization=example.organization,
        action="learning_example.delete",
        actor=actor,
        obj=example,
        before=snapshot(example),
    )
    example.delete()


# --- Approval of tool calls (agents.runtime.approvals) --------------------------------------------

#: Why an API key may not decide a tool call (the doors refuse it first with ``session_required``).
DECIDED_BY_PERSON = "A tool call is approved or refused by a person signed in, never by an API key."


def _approval_audit(approval: ToolApproval, known) -> dict:
    """An approval as its audit events record it: identifiers masked (the log is read in lists)."""
    return {
        "execution": approval.execution_id,
        "tool": approval.tool_id,
        "tool_name": approval.tool_name,
        "status": approval.status,
        "arguments": mask_data(approval.arguments, known=known),
        "edited_arguments": mask_data(approval.edited_arguments, known=known),
        "reason": mask_text(approval.reason, known=known),
    }


def _expire_if_late(approval: ToolApproval, now) -> None:
    """A decision asked after the request expired expires it first (committed, whatever follows)."""
    if approval.status == ToolApprovalStatus.PENDING and approval.expires_at <= now:
        _tool_approval_expire(approval.pk, now=now)


@retry_on_conflict
@transaction.atomic
def _tool_approval_decide(
    *, approval_id: int, actor, status: str, arguments: Any = None, reason: str = ""
) -> ToolApproval:
    if not isinstance(actor, get_user_model()):
        raise PermissionDenied(DECIDED_BY_PERSON)
    approval = ToolApproval.objects.select_related("execution__organization", "tool").get(pk=approval_id)
    lock_for_write(organization=approval.execution.organization_id)
    approval = (
        ToolApproval.objects.select_for_update(of=("self",))
        .select_related("execution__organization", "tool")
        .get(pk=approval_id)
    )
    if approval.status != ToolApprovalStatus.PENDING:
        raise ConflictError(
            f"This tool call is no longer waiting for a decision: it was {approval.get_status_display().lower()}"
            + (f" ({approval.reason})" if approval.status == ToolApprovalStatus.EXPIRED else "")
            + "."
        )
    state = approvals.load_state(approval.state)
    known = tuple(state["redactions"].values()) + tuple(state["found"])
    before = _approval_audit(approval, known)
    if status == ToolApprovalStatus.APPROVED and arguments is not None:
        if not isinstance(arguments, dict):
            raise ValidationError({"arguments": ["The arguments must be a JSON object."]})
        if approval.tool is None:
            raise ConflictError("The tool was deleted since the call was asked for: refuse the call.")
        try:
            approved_arguments(approval.tool, arguments, state["redactions"])
        except ToolArgumentsInvalid as exc:
            raise ValidationError(
                {
                    "arguments": [
                        f"The arguments do not match the tool's input schema: {m}" for m in exc.messages
                    ]
                }
            ) from exc
        if arguments != approval.arguments:
            approval.edited_arguments = arguments
    if status == ToolApprovalStatus.REFUSED:
        reason = (reason or "").strip()
        if not reason:
            raise ValidationError({"reason": ["Say why the call is refused: the model reads the reason."]})
        if len(reason) > 2000:
            raise ValidationError(
                {"reason": [f"The reason is too long ({len(reason)} characters; at most 2000)."]}
            )
        approval.reason = reason
    approval.status = status
    approval.decided_by = actor
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_by", "decided_at", "edited_arguments", "reason"])
    audit_record(
        organization=approval.execution.organization,
        action=f"tool_approval.{'approve' if status == ToolApprovalStatus.APPROVED else 'refuse'}",
        actor=actor,
        obj=approval,
        before=before,
        after=_approval_audit(approval, known),
    )
    from agents.tasks import resume_tool_call  # the task calls the runtime: the one lazy side

    pk = approval.pk
    transaction.on_commit(lambda: resume_tool_call.enqueue(approval_id=pk))
    return approval


def tool_approval_approve(*, approval: ToolApproval, actor, arguments: dict | None = None) -> ToolApproval:
    """Approve a paused tool call, as asked or with ``arguments`` edited (validated against the
    tool's input schema like the model's: ``ValidationError`` on ``arguments``); the run resumes in the
    background (``agents.tasks.resume_tool_call``). Only a person (``PermissionDenied`` for an API key);
    ``ConflictError`` once the call is decided or expired (a late decision expires it first)."""
    _expire_if_late(approval, timezone.now())
    return _tool_approval_decide(
        approval_id=approval.pk, actor=actor, status=ToolApprovalStatus.APPROVED, arguments=arguments
    )


def tool_approval_refuse(*, approval: ToolApproval, actor, reason: str) -> ToolApproval:
    """Refuse a paused tool call with a ``reason`` (required): the tool is not called, the model reads
    "the person refused this call: <reason>" as its result and the run goes on in the background.
    Same rules as ``tool_approval_approve``."""
    _expire_if_late(approval, timezone.now())
    return _tool_approval_decide(
        approval_id=approval.pk, actor=actor, status=ToolApprovalStatus.REFUSED, reason=reason
    )


@retry_on_conflict
@transaction.atomic
def _tool_approval_expire(approval_id: int, *, now) -> bool:
    approval = ToolApproval.objects.select_related("execution").filter(pk=approval_id).first()
    if approval is None:
        return False
    lock_for_write(organization=approval.execution.organization_id)
    approval = (
        ToolApproval.objects.select_for_update(of=("self",))
        .select_related("execution__agent__organization", "execution__persona")
        .filter(pk=approval_id, status=ToolApprovalStatus.PENDING, expires_at__lte=now)
        .first()
    )
    if approval is None:  # decided meanwhile
        return False
    try:
        state = approvals.load_state(approval.state)
        known = tuple(state["redactions"].values()) + tuple(state["found"])
    except ValueError:
        known = ()
    before = _approval_audit(approval, known)
    approval.status = ToolApprovalStatus.EXPIRED
    approval.reason = approvals.expired_reason(approval.tool_name)
    approval.decided_at = now
    audit_record(
        organization=approval.execution.agent.organization,
        action="tool_approval.expire",
        actor=None,
        obj=approval,
        before=before,
        after=_approval_audit(approval, known),
    )
    approvals.end_expired(approval, now=now)
    approval.state = ""
    approval.save(update_fields=["status", "reason", "decided_at", "state"])
    return True


def tool_approvals_expire(*, now=None, organization=None) -> int:
    """Expire every pending tool call older than ``PRISMA_GLOW_TOOL_APPROVAL_HOURS`` (in
    ``organization`` or everywhere): each approval ``expired`` and its run ``failed`` with the reason,
    audited (``tool_approval.expire`` by the system, then the run's ``agent.execute``), one transaction
    each. Run by the worker before each resumed run and by ``manage.py expire_tool_approvals``.
    Returns how many expired."""
    now = now or timezone.now()
    due = ToolApproval.objects.filter(status=ToolApprovalStatus.PENDING, expires_at__lte=now)
    if organization is not None:
        due = due.filter(execution__organization=organization)
    return sum(_tool_approval_expire(pk, now=now) for pk in list(due.values_list("pk", flat=True)))
