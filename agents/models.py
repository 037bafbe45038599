"""Agents, their assignments, model providers, executions and the learning loop."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.privacy import shown_text
from prisma_glow import outbound
from prisma_glow.config_stamp import ConfigQuerySet
from prisma_glow.crypto import EncryptedTextField
from prisma_glow.display import format_money
from prisma_glow.models import DomainModel, TimeStampedModel

# --- Providers --------------------------------------------------------------------------------


class ProviderKind(models.TextChoices):
    OFFLINE = "offline", "Offline (extractive, no model)"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"


class ModelProvider(TimeStampedModel):
    """Where model calls go: the embedded offline engine or an OpenAI-compatible endpoint.

    ``api_key`` is encrypted at rest and never returned by the API. Prices are per 1,000 tokens in
    the firm's accounting currency.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="providers"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=ProviderKind.choices, default=ProviderKind.OFFLINE)
    base_url = models.URLField(max_length=500, blank=True)
    api_key = EncryptedTextField(blank=True, default="")
    default_model = models.CharField(max_length=120, blank=True)
    price_input_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    price_output_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    timeout_seconds = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    is_default = models.BooleanField(default=False)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="provider_unique_name_per_org",
                violation_error_message="A provider with this name already exists in this organisation.",
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_default=True),
                name="provider_one_default_per_org",
                violation_error_message="Only one provider can be the organisation's default.",
            ),
            models.CheckConstraint(
                condition=Q(price_input_per_1k__gte=0) & Q(price_output_per_1k__gte=0),
                name="provider_prices_non_negative",
                violation_error_message="Prices cannot be negative.",
            ),
            models.CheckConstraint(condition=Q(kind__in=ProviderKind.values), name="provider_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind=ProviderKind.OFFLINE) | ~Q(base_url=""),
                name="provider_remote_has_url",
                violation_error_message="An OpenAI-compatible provider needs a base URL.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """An OpenAI-compatible provider's ``base_url`` must pass the outbound guard with the
        providers' allow-list (``PROVIDER_ALLOWED_HOSTS``): a literal internal address, or a name
        resolving to one now, is refused. A name that does not resolve yet passes; each call checks
        again (``agents.runtime.providers.openai_compatible``)."""
        if self.kind != ProviderKind.OPENAI_COMPATIBLE or not self.base_url:
            return
        try:
            outbound.provider_policy().check_url(self.base_url)
        except outbound.DestinationRefused as exc:
            raise ValidationError({"base_url": str(exc)}) from exc


# --- Agents -----------------------------------------------------------------------------------


class AgentType(models.TextChoices):
    TAX = "tax", "Tax"
    AUDIT = "audit", "Audit"
    ADVISORY = "advisory", "Advisory"
    GENERAL = "general", "General"


class AgentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"


class Agent(TimeStampedModel):
    """An AI agent of the firm: a persona, tools, knowledge and guardrails behind one name.

    Lifecycle: draft → active → deprecated (and back to active). Only active agents run through the
    API. An agent with executions cannot be deleted (their records stay readable): deprecate it.
    """

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    type = models.CharField(max_length=10, choices=AgentType.choices, default=AgentType.GENERAL)
    status = models.CharField(max_length=12, choices=AgentStatus.choices, default=AgentStatus.DRAFT)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_agents",
    )
    provider = models.ForeignKey(
        ModelProvider,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agents",
        help_text="Blank: the organisation's default provider, or the offline engine.",
    )
    model = models.CharField(max_length=120, blank=True, help_text="Blank: the provider's default model.")
    max_tool_rounds = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(0), MaxValueValidator(20)]
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        default=120, validators=[MinValueValidator(1), MaxValueValidator(900)]
    )
    #: The release an API run of the active agent runs (``agents.releases``); set by activation.
    active_release = models.ForeignKey(
        "agents.Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"],
                name="agent_unique_slug_per_org",
                violation_error_message="An agent with this slug already exists in this organisation.",
            ),
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="agent_unique_name_per_org",
                violation_error_message="An agent with this name already exists in this organisation.",
            ),
            models.CheckConstraint(condition=Q(type__in=AgentType.values), name="agent_type_valid"),
            models.CheckConstraint(condition=Q(status__in=AgentStatus.values), name="agent_status_valid"),
        ]
        indexes = [models.Index(fields=["organization", "status", "type"])]

    def __str__(self) -> str:
        return self.name


class AgentTool(DomainModel):
    """A tool assigned to an agent, in order, with per-assignment settings."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_assignments")
    tool = models.ForeignKey("tools.Tool", on_delete=models.PROTECT, related_name="assignments")
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    settings = models.JSONField(default=dict, blank=True)
    #: Whether calls through this assignment wait for a person's approval; null: as the tool says
    #: (``Tool.requires_approval``).
    requires_approval = models.BooleanField(
        null=True,
        blank=True,
        default=None,
        help_text="Leave empty to follow the tool's own setting; yes or no overrides it for this agent.",
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "agent__organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "agent__organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "tool"],
                name="agenttool_unique",
                violation_error_message="This tool is already assigned to the agent.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.tool}"


class AgentKnowledge(DomainModel):
    """A knowledge base assigned to an agent, with retrieval settings (top_k, minimum score)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge_assignments")
    knowledge_base = models.ForeignKey(
        "knowledge.KnowledgeBase", on_delete=models.PROTECT, related_name="assignments"
    )
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    top_k = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    min_score = models.FloatField(default=0.0, validators=[MinValueValidator(0.0)])

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "agent__organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "agent__organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "order", "id"]
        verbose_name_plural = "agent knowledge"
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "knowledge_base"],
                name="agentknowledge_unique",
                violation_error_message="This knowledge base is already assigned to the agent.",
            ),
            models.CheckConstraint(
                condition=Q(top_k__gte=1) & Q(top_k__lte=50), name="agentknowledge_top_k_range"
            ),
            models.CheckConstraint(
                condition=Q(min_score__gte=0), name="agentknowledge_min_score_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.knowledge_base}"


class AgentGuardrail(DomainModel):
    """A guardrail assigned to an agent; assignments run in ``order``, the first block wins."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="guardrail_assignments")
    guardrail = models.ForeignKey(
        "guardrails.Guardrail", on_delete=models.PROTECT, related_name="assignments"
    )
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "agent__organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "agent__organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "guardrail"],
                name="agentguardrail_unique",
                violation_error_message="This guardrail is already assigned to the agent.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.guardrail}"


# --- Executions -------------------------------------------------------------------------------


class Release(models.Model):
    """An immutable snapshot of everything that decides a run of an agent (``agents.releases``).

    ``snapshot`` holds, as they were when the release was created: the agent's run settings, the persona
    version's text and settings, the provider and the model, the tool, knowledge and guardrail
    assignments with their settings, the tools' definitions and the guardrails' configurations, and the
    approved learning examples (stored redacted; their mappings in ``example_redactions``, encrypted).
    Secrets are not copied: a run takes the provider's key and a tool's secret headers from their live
    rows. ``content_hash`` is the SHA-256 of the canonical form of both (``agents.releases``).
    ``number`` counts up per agent. Nothing updates a release's contents: a change is a new one (only
    ``activated_at`` is set, once, when it first goes live).
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="releases"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="releases")
    number = models.PositiveIntegerField()
    #: The persona version the snapshot holds: a version in a release is used (immutable, kept).
    persona = models.ForeignKey("personas.Persona", on_delete=models.PROTECT, related_name="releases")
    snapshot = models.JSONField()
    example_redactions = EncryptedTextField(blank=True, default="")
    content_hash = models.CharField(max_length=64)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: When the release first went live (``agents.services.agent_activate``, after an approved
    #: activation request). Only a release activated at some time answers API runs (``is_test`` False):
    #: the active one, or an earlier one pinned by number; a release never approved runs only as a test.
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "number"],
                name="release_unique_number_per_agent",
                violation_error_message="This agent already has a release with this number.",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="release_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} release {self.number}"

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


class ActivationRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    CANCELLED = "cancelled", "Cancelled"
    SUPERSEDED = "superseded", "Superseded"


class ActivationRequest(models.Model):
    """A request to put one release of an agent live, and its decision (``agents.activation``).

    An editor (a person, or an API key with the ``write`` scope: a CI pipeline) asks; another admin or
    owner, signed in with a fresh second factor, approves (the activation gates run, then the release
    becomes active) or refuses with a reason; the requester may cancel. An organisation with
    ``one_person_activation`` lets an admin or owner approve their own request. At most one request per
    agent is pending: a new one supersedes it. ``verdict`` is what the gates reported when it was
    approved (their evidence, e.g. the evaluation run that passed). Rows are the record of who asked
    and who decided: nothing but the services changes them, and only while pending.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="activation_requests"
    )
    # Part of the agent's history: an agent is deleted only before it ever ran (agents.services).
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="activation_requests")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="activation_requests")
    status = models.CharField(
        max_length=12, choices=ActivationRequestStatus.choices, default=ActivationRequestStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_key = models.ForeignKey(
        "tenancy.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Who asked, as text that survives the user's deletion (a username or "API key <prefix>").
    requester_label = models.CharField(max_length=200, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True, help_text="Why this release should go live (the requester's).")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decider_label = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was refused (or cancelled, superseded).")
    #: The gates' report when approved: {"passed": true, "gates": {name: evidence}, "self_approved": …}.
    verdict = models.JSONField(default=dict, blank=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(status="pending"),
                name="activation_request_one_pending_per_agent",
                violation_error_message="This agent already has a pending activation request.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "refused", "cancelled", "superseded"]),
                name="activation_request_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(requested_by__isnull=True) | Q(requested_by_key__isnull=True),
                name="activation_request_one_requester",
                violation_error_message="A request is made by a person or by an API key, not both.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "status", "-requested_at"], name="actreq_org_status")]

    def __str__(self) -> str:
        return f"Activation of {self.release} ({self.get_status_display().lower()})"

    @property
    def is_pending(self) -> bool:
        return self.status == ActivationRequestStatus.PENDING


class Conversation(models.Model):
    """A thread of runs of one agent: each turn is an execution (``Execution.conversation``, numbered by
    ``Execution.turn``), and the earlier turns go to the model with the next question, through the
    privacy boundary (``agents.runtime.boundary``).

    ``title`` is the first question with every client identifier masked (``conversation_title``:
    ``guardrails.masking``, with what the agent's PII guardrails find): it is the conversation's name in lists and in the audit log, which must
    never hold a raw identifier.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="conversations"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=120, blank=True)
    started_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_api_key = models.ForeignKey(
        "tenancy.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="conversation_org_created"),
            models.Index(fields=["agent", "-created_at"], name="conversation_agent_created"),
        ]

    def __str__(self) -> str:
        return f"{self.title or 'Conversation'} (#{self.pk})"


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    #: A budget could not cover the run's next provider call (``agents.runtime.budgets``); ``error``
    #: says which budget and when it resets.
    REFUSED = "refused", "Refused (budget)"
    #: The model called a tool that requires approval: the run is paused until a person approves,
    #: edits or refuses the call (``ToolApproval``), then resumes in the background; unanswered, it
    #: ends ``failed`` after ``PRISMA_GLOW_TOOL_APPROVAL_HOURS``.
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"


#: How long past its agent's time limit (``Agent.timeout_seconds``) a ``running`` run may still be
#: going (its record being written). Later, its process died: it no longer holds its conversation
#: (``agents.runtime.conversations``) nor its budget reservations (``agents.runtime.budgets``).
RUN_GRACE = dt.timedelta(seconds=60)


def run_live_until(created_at: dt.datetime, timeout_seconds: int) -> dt.datetime:
    """The moment a run started at ``created_at`` can no longer be going (the one rule for "stale").
    A run resumed after a tool call's approval started again at its ``resumed_at``: callers pass that
    (``running_since``)."""
    return created_at + dt.timedelta(seconds=timeout_seconds) + RUN_GRACE


def running_since(created_at: dt.datetime, resumed_at: dt.datetime | None) -> dt.datetime:
    """When the run's current stretch started: its creation, or its resumption after an approval
    (the time a run waits for a person does not count against its time limit)."""
    return resumed_at or created_at


def run_is_live(status: str, created_at: dt.datetime, timeout_seconds: int, *, now=None) -> bool:
    """Whether a run may still be going: ``running``, and started (or resumed: pass
    ``running_since``) less than its agent's time limit plus ``RUN_GRACE`` ago. A run that is not is
    finished, paused for an approval (it holds no budget reservation; its conversation stays busy all
    the same, ``agents.runtime.conversations``), or its process died."""
    if status != ExecutionStatus.RUNNING:
        return False
    return run_live_until(created_at, timeout_seconds) > (now or timezone.now())


class ExecutionSource(models.TextChoices):
    CONSOLE = "console", "Test console"
    API = "api", "API"
    EVAL = "eval", "Evaluation"
    CLI = "cli", "Command line"


class Execution(models.Model):
    """One run of an agent: input, answer, status, cost, latency and (in ``steps``) the full trace.

    ``tokens_in`` / ``tokens_out`` are null when the provider reported no usage. ``redactions`` maps
    PII placeholders to originals, encrypted, so the answer can be restored for the requester while
    the provider never sees them. ``is_test`` marks runs of draft agents from the console.
    ``conversation`` / ``turn``: the conversation the run belongs to and its place in it (null for runs
    outside one, and for those recorded before conversations existed).
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="executions"
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="executions")
    persona = models.ForeignKey(
        "personas.Persona", null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    provider = models.ForeignKey(
        ModelProvider, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    provider_kind = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=120, blank=True)
    input = models.TextField()
    output = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING)
    error = models.TextField(blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=ExecutionSource.choices, default=ExecutionSource.API)
    is_test = models.BooleanField(default=False)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "tenancy.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    citations = models.JSONField(default=list, blank=True)
    redactions = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.PROTECT, related_name="turns"
    )
    #: The execution's place in its conversation (1, 2, …); null without a conversation.
    turn = models.PositiveIntegerField(null=True, blank=True)
    #: The release the run ran (``agents.releases``); null for a run of the draft (the live
    #: configuration, in the console), and for runs recorded before releases existed.
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    #: The day the knowledge was searched as of (documents in force that day).
    as_of = models.DateField(null=True, blank=True)
    #: The execution this one replays (``agents.replay``): its input and ``as_of`` run again, as a test
    #: run pinned to a release. Null for every other run.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    #: When the run last resumed after a tool call's approval (null: never paused); its time limit and
    #: the "stale" rule count from here (``running_since``).
    resumed_at = models.DateTimeField(null=True, blank=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExecutionStatus.values), name="execution_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=ExecutionSource.values), name="execution_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="execution_cost_non_negative"
            ),
            models.UniqueConstraint(
                fields=["conversation", "turn"],
                condition=Q(conversation__isnull=False),
                name="execution_unique_turn",
                violation_error_message="This turn of the conversation already exists.",
            ),
            models.CheckConstraint(
                condition=Q(conversation__isnull=True, turn__isnull=True)
                | Q(conversation__isnull=False, turn__gte=1),
                name="execution_turn_with_conversation",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["agent", "-created_at"]),
            models.Index(fields=["organization", "status", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.agent} #{self.pk} ({self.status})"


class StepKind(models.TextChoices):
    GUARDRAIL = "guardrail", "Guardrail"
    RETRIEVAL = "retrieval", "Retrieval"
    MODEL_CALL = "model_call", "Model call"
    TOOL_CALL = "tool_call", "Tool call"
    #: A tool call's approval: requested (the run paused), approved / edited / refused, or expired.
    APPROVAL = "approval", "Approval"


class StepStatus(models.TextChoices):
    """``blocked``: a guardrail ended the run. ``dropped`` / ``flagged``: a retrieval guardrail, or the
    privacy boundary (``agents.runtime.boundary``), withheld parts from the model, or let them through
    marked; the run goes on."""

    OK = "ok", "OK"
    WARNED = "warned", "Warned"
    FLAGGED = "flagged", "Flagged"
    DROPPED = "dropped", "Dropped"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"


class ExecutionStep(models.Model):
    """One step of an execution's trace, in order: a guardrail verdict, a retrieval, a model or tool call."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    ordinal = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=StepKind.choices)
    name = models.CharField(max_length=200)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.OK)
    duration_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    started_at = models.DateTimeField()

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "execution__organization"

    class Meta:
        ordering = ["execution", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "ordinal"], name="step_unique_ordinal"),
            models.CheckConstraint(condition=Q(kind__in=StepKind.values), name="step_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=StepStatus.values), name="step_status_valid"),
            models.CheckConstraint(condition=Q(duration_ms__gte=0), name="step_duration_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.ordinal}. {self.kind} {self.name}"


# --- Tool-call approvals ------------------------------------------------------------------------


class ToolApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    EXPIRED = "expired", "Expired"


class ToolApproval(models.Model):
    """A tool call the model asked for that waits for a person (the tool, or its assignment, requires
    approval): the run is paused (``ExecutionStatus.AWAITING_APPROVAL``) until an editor approves it
    (with the arguments edited or not), refuses it with a reason, or it expires.

    ``arguments`` are the arguments as the model wrote them: the run's placeholders stand for client
    identifiers (``[IBAN_1]``), exactly as the run's trace records them; never the values.
    ``edited_arguments``: what the approver set instead (null: approved as asked). ``state`` is what
    the pipeline needs to continue (``agents.runtime.approvals``: the messages as sent to the provider,
    the redaction mapping, the round, tokens and cost so far, the passages, the calls still to make),
    encrypted like ``Execution.redactions``; it is cleared once the run has resumed. At most one
    pending approval per execution: a run pauses at one call at a time.
    """

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="tool_approvals")
    tool = models.ForeignKey(
        "tools.Tool", null=True, blank=True, on_delete=models.SET_NULL, related_name="approvals"
    )
    #: The tool's name when the call was asked for (kept if the tool is deleted since).
    tool_name = models.CharField(max_length=120)
    call_id = models.CharField(max_length=200, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    edited_arguments = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=ToolApprovalStatus.choices, default=ToolApprovalStatus.PENDING
    )
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField()
    state = EncryptedTextField(blank=True, default="")

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "execution__organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ToolApprovalStatus.values), name="toolapproval_status_valid"
            ),
            models.UniqueConstraint(
                fields=["execution"],
                condition=Q(status="pending"),
                name="toolapproval_one_pending_per_execution",
                violation_error_message="This run already waits for the approval of a tool call.",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="toolapproval_decided_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.tool_name} for execution {self.execution_id} ({self.status})"

    @property
    def effective_arguments(self) -> dict:
        """The arguments the tool is (or would be) called with: the edited ones, else the model's."""
        return self.arguments if self.edited_arguments is None else self.edited_arguments


# --- Learning ---------------------------------------------------------------------------------


class Rating(models.IntegerChoices):
    """Said in words (the API, the admin's lists): an emoji shows as an empty box without an emoji font."""

    DOWN = -1, "Thumbs down"
    UP = 1, "Thumbs up"


class Feedback(models.Model):
    """A person's verdict on one execution (thumbs up or down), with an optional correction."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True)
    correction = models.TextField(blank=True, help_text="What the answer should have been.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "tenancy.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "execution__organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(condition=Q(rating__in=[-1, 1]), name="feedback_rating_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on {self.execution}"


class LearningExampleStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class LearningExample(TimeStampedModel):
    """An input and its ideal answer for an agent. Approved examples are added to the prompt as
    few-shot examples; corrections from feedback arrive as proposed examples for review.

    ``input`` and ``output`` are stored with client identifiers as placeholders (``[IBAN_1]``);
    ``redactions`` maps them to the values, encrypted, as ``Execution.redactions`` does. Who sees the
    values is ``agents.privacy``'s rule; the name (``__str__``, written to the audit log) masks them.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="learning_examples"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="learning_examples")
    input = models.TextField()
    output = models.TextField()
    status = models.CharField(
        max_length=10, choices=LearningExampleStatus.choices, default=LearningExampleStatus.PROPOSED
    )
    source_feedback = models.ForeignKey(
        Feedback, null=True, blank=True, on_delete=models.SET_NULL, related_name="learning_examples"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    redactions = EncryptedTextField(blank=True, default="")

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=LearningExampleStatus.values), name="learningexample_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["agent", "status"])]

    def __str__(self) -> str:
        # The name goes into the append-only audit log: identifiers masked, never the values.
        return f"{self.agent}: {shown_text(self, self.input, visible=False)[:60]}"


# --- Budgets ----------------------------------------------------------------------------------


class BudgetMetric(models.TextChoices):
    TOKENS = "tokens", "Tokens (input + output)"
    COST = "cost", "Cost"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"


#: Cost is counted in millionths of the accounting currency (``Execution.cost`` has six decimals), so
#: that reservations add and compare exactly, as integers, on every database.
COST_UNITS_PER_CURRENCY = 1_000_000


class Budget(TimeStampedModel):
    """A ceiling on what runs may consume per day or per month: the whole organisation's (``agent``
    empty) or one agent's. ``metric`` tokens counts input plus output tokens; cost counts the
    providers' prices (``ModelProvider.price_*_per_1k``) in the firm's accounting currency.

    Every budget that applies to a run (its organisation's and its agent's) must cover the largest
    possible cost of each provider call before the call is made (``agents.runtime.budgets``); what
    has been consumed in a period is its ``BudgetUsage`` row. One budget per organisation (or agent),
    metric and period.
    """

    organization = models.ForeignKey("tenancy.Organization", on_delete=models.CASCADE, related_name="budgets")
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
        help_text="Blank: the whole organisation (every agent's runs count).",
    )
    metric = models.CharField(max_length=10, choices=BudgetMetric.choices)
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices)
    limit = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        help_text="Tokens (a whole number), or cost in the accounting currency of the providers' prices.",
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Changes replace the organisation's configuration stamp: runs read budgets with their
    #: configuration (``agents.selectors.agent_run_configuration``).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = [models.F("agent").asc(nulls_first=True), "metric", "period", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(limit__gt=0),
                name="budget_limit_positive",
                violation_error_message="The limit must be greater than zero.",
            ),
            models.CheckConstraint(condition=Q(metric__in=BudgetMetric.values), name="budget_metric_valid"),
            models.CheckConstraint(condition=Q(period__in=BudgetPeriod.values), name="budget_period_valid"),
            models.UniqueConstraint(
                fields=["organization", "metric", "period"],
                condition=Q(agent__isnull=True),
                name="budget_unique_per_org",
                violation_error_message="The organisation already has a budget for this metric and "
                "period: change that one.",
            ),
            models.UniqueConstraint(
                fields=["agent", "metric", "period"],
                condition=Q(agent__isnull=False),
                name="budget_unique_per_agent",
                violation_error_message="This agent already has a budget for this metric and period: "
                "change that one.",
            ),
        ]

    def __str__(self) -> str:
        whose = self.agent.name if self.agent_id else "Organisation"
        return f"{whose}: {self.period_adjective} {self.metric} budget"

    @property
    def period_adjective(self) -> str:
        return "daily" if self.period == BudgetPeriod.DAY else "monthly"

    def clean(self) -> None:
        if self.metric == BudgetMetric.TOKENS and self.limit is not None and self.limit != int(self.limit):
            raise ValidationError({"limit": "A token budget is a whole number of tokens."})

    @property
    def limit_units(self) -> int:
        """The limit in the units usage is counted in (tokens, or millionths of the currency)."""
        return to_units(self.metric, self.limit)

    def show(self, units: int, currency: str = "") -> str:
        """``units`` of this budget's metric as a person reads them ("12,000 tokens", "1.25"; with the
        organisation's ``currency``, money's one format: "EUR 1.2500")."""
        return show_units(self.metric, units, currency)


def to_units(metric: str, amount) -> int:
    """``amount`` (tokens, or cost in the currency) in counting units, rounded up."""
    if metric == BudgetMetric.TOKENS:
        return math.ceil(Decimal(amount))
    return math.ceil(Decimal(amount) * COST_UNITS_PER_CURRENCY)


def period_bounds(period: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The start and end of the budget ``period`` (a calendar day or month in ``TIME_ZONE``) that
    contains ``now``."""
    local = timezone.localtime(now, timezone.get_default_timezone())
    if period == BudgetPeriod.DAY:
        first = local.date()
        following = first + dt.timedelta(days=1)
    else:
        first = local.date().replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
    return (
        dt.datetime.combine(first, dt.time.min, tzinfo=local.tzinfo),
        dt.datetime.combine(following, dt.time.min, tzinfo=local.tzinfo),
    )


def show_units(metric: str, units: int, currency: str = "") -> str:
    if metric == BudgetMetric.TOKENS:
        return f"{units:,} tokens"
    value = Decimal(units) / COST_UNITS_PER_CURRENCY
    if currency:
        return format_money(value, currency)
    return f"{value.quantize(Decimal('0.01')) if value == value.quantize(Decimal('0.01')) else value.normalize():,}"


class BudgetUsage(models.Model):
    """What a budget's period has consumed: ``used`` (settled, the providers' real figures) and
    ``reserved`` (the largest possible cost of provider calls in progress), in counting units (tokens,
    or millionths of the currency). A reservation is one conditional UPDATE (``used + reserved + amount
    <= limit``), so concurrent runs can never reserve past the limit together."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="usage")
    period_start = models.DateTimeField()
    used = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "budget__organization"

    class Meta:
        ordering = ["budget", "-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start"], name="budgetusage_unique_period"),
            models.CheckConstraint(
                condition=Q(used__gte=0) & Q(reserved__gte=0), name="budgetusage_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget} from {self.period_start:%Y-%m-%d}"


class BudgetReservation(models.Model):
    """What one run holds of a budget period's ``reserved`` for its provider call in progress
    (``amount``, in counting units). Taken back when the run's next call reserves or its record is
    written, and the call's real figure added to ``used`` instead; the reservation of a run that
    stopped without finishing is released (``agents.runtime.budgets.release_stale``). Deleting the row
    is what entitles a run, or the release, to take its amount off ``reserved``: never both."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="reservations")
    period_start = models.DateTimeField()
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="budget_reservations")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "execution__organization"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "execution"], name="budgetreservation_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="budgetreservation_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Execution {self.execution_id} holds {self.amount} of {self.budget}"
