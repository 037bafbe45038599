"""Who may do what: one permission policy for every door (the API, the staff UI, the console).

Every operation a person or an API key can perform has a name (``agent.change``,
``membership.grant_owner``…) and one row in ``OPERATIONS``: the least member role it needs and the
API-key scope that allows it (``None``: no key ever may). Rules that depend on the object or on what
is asked live in ``OBJECT_RULES``: a rule looks at the object and the request's context and names a
further operation that must also be allowed (touching an owner needs ``membership.grant_owner``), or
refuses outright (built-in tools are read-only). ``STEP_UP`` says which operations are sensitive (always,
or depending on the object and what is asked: a provider's secret set or cleared, a guardrail turned
off, a stored secret sent to another address): a person allowed one must also have checked their second factor within
``PRISMA_GLOW_STEP_UP_MINUTES``. A refusal carries a ``code``: ``permission_denied``,
``session_required`` (no API key may) or ``step_up_required`` (allowed after a fresh check).

Both doors ask the same function::

    decision = policy.decide(access, "membership.change_role", obj=membership, role="owner")
    if not decision: raise PermissionDenied(decision.reason)  # decision.code says why

``decide`` is what a door asks before acting; ``allows`` (no step-up) what a page offers.

``access`` is anything with ``role``, ``api_key`` and ``is_superuser`` (the API's ``Access``, the
admin's ``AdminAccess``). ``DOORS`` maps every page and action of the staff UI to the operation it
performs and to the API route that performs the same one; ``ADMIN_ONLY`` and ``API_ONLY`` list the
rest, so that a new page or route nobody classified fails ``tests/platform/test_policy_doors.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prisma_glow.tenancy.models import ROLE_RANK, Role, Scope


class Principal(Protocol):
    """What the policy needs to know about a caller (``Access`` and ``AdminAccess`` both are one).

    ``step_up_needed()`` says whether the person must check their second factor before a sensitive
    operation (``prisma_glow.factors.step_up_needed`` of their request); a principal without it (a
    key, a test's stand-in) is never asked for one."""

    role: str | None
    api_key: Any
    is_superuser: bool

    def step_up_needed(self) -> bool: ...


@dataclass(frozen=True)
class Rule:
    """The least member role, and the API-key scope (``None``: never a key), an operation needs."""

    role: str
    scope: str | None
    summary: str


# Why a decision refuses (the API's 403 ``code``; the admin shows the code page for a step-up).
PERMISSION_DENIED = "permission_denied"  # the role or scope is too weak, or the object forbids it
SESSION_REQUIRED = "session_required"  # a person signed in must do it: never an API key
STEP_UP_REQUIRED = "step_up_required"  # allowed, after a fresh check of the person's second factor


@dataclass(frozen=True)
class Decision:
    """An answer with its reason and code; true when allowed. The reason is the 403's message."""

    allowed: bool
    reason: str = ""
    code: str = PERMISSION_DENIED

    def __bool__(self) -> bool:
        return self.allowed


VIEWER, EDITOR, ADMIN_ROLE, OWNER = Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER
# Above every role: operations of the site, not of an organisation (user accounts). Only superusers,
# who pass every role rule, are allowed them.
SUPERUSER = "superuser"
READ, WRITE, EXECUTE, ADMIN = Scope.READ, Scope.WRITE, Scope.EXECUTE, Scope.ADMIN


def _crud(resource: str, noun: str, *, view=(VIEWER, READ), write=(EDITOR, WRITE)) -> dict[str, Rule]:
    return {
        f"{resource}.view": Rule(*view, f"read {noun}"),
        f"{resource}.add": Rule(*write, f"create {noun}"),
        f"{resource}.change": Rule(*write, f"change {noun}"),
        f"{resource}.delete": Rule(*write, f"delete {noun}"),
    }


# --- The operations ---------------------------------------------------------------------------
OPERATIONS: dict[str, Rule] = {
    # Agents and what hangs off them.
    **_crud("agent", "agents"),
    # Putting a release live takes two people (agents.activation): an editor or a write key (a CI
    # pipeline) requests it, and another admin or owner — signed in, with a fresh second factor —
    # approves it (the requester too where the organisation allows one-person activation). Refusing
    # needs the approver's role; the requester cancels with the right to request. Retiring an agent
    # stays open to write keys (a client may take its own agent down).
    "release.request": Rule(EDITOR, WRITE, "request the activation of a release"),
    "release.approve": Rule(ADMIN_ROLE, None, "approve the activation of a release"),
    "release.refuse": Rule(ADMIN_ROLE, None, "refuse the activation of a release"),
    "agent.deprecate": Rule(EDITOR, WRITE, "deprecate agents"),
    "agent.execute": Rule(EDITOR, EXECUTE, "run agents"),
    **_crud("persona", "personas"),
    **_crud("assignment", "an agent's tool, knowledge and guardrail assignments"),
    # Releases (issue 17): immutable snapshots of an agent; read by all, created by editors / write keys.
    "release.view": Rule(VIEWER, READ, "read agents' releases"),
    "release.add": Rule(EDITOR, WRITE, "create releases"),
    "execution.view": Rule(VIEWER, READ, "read executions"),
    "execution.feedback": Rule(VIEWER, EXECUTE, "give feedback on executions"),
    # Replaying runs a past input again (identifiers included): editors, or write keys (own runs only:
    # agents.replay checks that the caller may see the original's identifiers).
    "execution.replay": Rule(EDITOR, WRITE, "replay executions"),
    # Tool calls that wait for a person (agents.runtime.approvals): read by every member, decided by
    # an editor signed in, never by an API key.
    "tool_call.view": Rule(VIEWER, READ, "read tool calls awaiting approval"),
    "tool_call.decide": Rule(EDITOR, None, "approve, edit or refuse tool calls"),
    **_crud("learning_example", "learning examples"),
    **_crud("model_provider", "model providers", write=(ADMIN_ROLE, ADMIN)),
    # "Test connection" sends the stored key to the stored address (no secret changes hands, so no
    # step-up): whoever may change the provider; a staff page only, so never a key (agents.admin.providers).
    "model_provider.test": Rule(ADMIN_ROLE, None, "test model providers' connections"),
    # Budgets (issue 16): what runs may consume, and how much they have.
    **_crud("budget", "budgets", view=(ADMIN_ROLE, ADMIN), write=(ADMIN_ROLE, ADMIN)),
    # Tools, guardrails, knowledge.
    **_crud("tool", "tools"),
    "tool.test": Rule(EDITOR, EXECUTE, "test tools"),
    **_crud("guardrail", "guardrails"),
    "guardrail.check": Rule(EDITOR, EXECUTE, "test guardrails"),
    **_crud("knowledge_base", "knowledge bases"),
    "knowledge_base.search": Rule(VIEWER, READ, "search knowledge bases"),
    **_crud("document", "documents"),
    # Evaluations (issue 17): suites and cases are written by editors; running a suite runs the agent
    # (executions, cost), so it needs the execute scope; which suite gates activation is an admin's call.
    **_crud("evaluation_suite", "evaluation suites"),
    **_crud("evaluation_case", "evaluation cases"),
    "evaluation_run.view": Rule(VIEWER, READ, "read evaluation runs"),
    "evaluation_run.add": Rule(EDITOR, EXECUTE, "run evaluation suites"),
    "evaluation_run.mark": Rule(EDITOR, WRITE, "mark the cases of evaluation runs pass or fail"),
    **_crud("evaluation_requirement", "evaluation requirements", write=(ADMIN_ROLE, ADMIN)),
    # The organisation, its members and keys, its audit log.
    "organization.view": Rule(VIEWER, READ, "read the organisation"),
    "organization.update": Rule(OWNER, None, "change the organisation's settings"),
    "membership.view": Rule(VIEWER, READ, "read the members"),
    # Who belongs and with which rights, and who holds keys, is decided by people: never a key.
    "membership.add": Rule(ADMIN_ROLE, None, "add members"),
    "membership.change_role": Rule(ADMIN_ROLE, None, "change members' roles"),
    "membership.remove": Rule(ADMIN_ROLE, None, "remove members"),
    "membership.grant_owner": Rule(OWNER, None, "grant, change or remove the owner role"),
    "membership.unlock_login": Rule(OWNER, None, "unlock members' sign-ins"),
    # Reading who was invited is not inviting: no step-up (inviting and revoking are membership.add).
    "invitation.view": Rule(ADMIN_ROLE, ADMIN, "read the invitations"),
    "api_key.view": Rule(ADMIN_ROLE, ADMIN, "read the API keys"),
    "api_key.create": Rule(ADMIN_ROLE, None, "create API keys"),
    "api_key.rotate": Rule(ADMIN_ROLE, None, "rotate API keys"),
    "api_key.revoke": Rule(ADMIN_ROLE, ADMIN, "revoke API keys"),
    "audit.view": Rule(ADMIN_ROLE, ADMIN, "read the audit log"),
    # The staff guide (/admin/guide/, docs/guide.md): every member, in the staff UI only (the API has its
    # own documentation, /api/v1/docs/).
    "guide.view": Rule(VIEWER, None, "read the staff guide"),
    # A session's own second-factor check (POST /api/v1/auth/step-up/): any signed-in person (a member,
    # or a superuser of no organisation: the route has its own permission), never a key.
    "factor.step_up": Rule(VIEWER, None, "check a second factor"),
    # Django's own user pages (/admin/auth/user/): creating users, making superusers, setting
    # passwords, deleting users. Site administration: superusers only, and sensitive.
    "user.manage": Rule(SUPERUSER, None, "manage user accounts"),
}


# --- Rules that depend on the object or on what is asked ----------------------------------------
Check = Callable[[Any, dict], "str | Decision | None"]


def _touches_owner(obj, context: dict) -> str | None:
    """Granting the owner role, or changing or removing an owner's membership, is for owners."""
    roles = {getattr(obj, "role", None), context.get("role")}
    return "membership.grant_owner" if Role.OWNER in roles else None


BUILTIN_TOOL_READ_ONLY = (
    "Built-in tools are provided by Prisma Glow and are read-only; create an HTTP tool instead."
)


def _builtin_tool(obj, context: dict) -> Decision | None:
    if obj is not None and getattr(obj, "organization_id", 0) is None:
        return Decision(False, BUILTIN_TOOL_READ_ONLY)
    return None


# operation → checks; a check returns None (no further condition), the name of an operation that
# must also be allowed, or a refusal.
OBJECT_RULES: dict[str, tuple[Check, ...]] = {
    "membership.add": (_touches_owner,),
    "membership.change_role": (_touches_owner,),
    "membership.remove": (_touches_owner,),
    "tool.change": (_builtin_tool,),
    "tool.delete": (_builtin_tool,),
}


# --- Sensitive operations: a fresh second factor first (step-up) ----------------------------------
StepUpWhen = Callable[[Any, dict], bool]


def _always(obj, context: dict) -> bool:
    return True


def _sets_secret(obj, context: dict) -> bool:
    """A provider's API key is typed (``api_key=`` non-empty) on its creation."""
    return bool(context.get("api_key"))


# What decides where a provider's stored API key is sent: changing either sends the key elsewhere.
SECRET_DESTINATION = ("base_url", "kind")


def _changes_secret(obj, context: dict) -> bool:
    """A provider's API key is set, replaced or cleared (``api_key=""``) by a change, or a stored key
    is sent somewhere else (``base_url=`` or ``kind=`` different from the provider's: the next run
    sends the key there). A change that leaves the key out (``api_key`` absent or None) and keeps its
    destination is not, nor clearing a key that is not there, nor moving a provider that holds none."""
    value = context.get("api_key")
    stored = bool(getattr(obj, "api_key", ""))
    if value is not None and (value != "" or stored):
        return True
    return stored and any(
        context.get(field) is not None and context[field] != getattr(obj, field, None)
        for field in SECRET_DESTINATION
    )


def _removes_secret(obj, context: dict) -> bool:
    """Deleting a provider removes its stored API key with it."""
    return bool(getattr(obj, "api_key", ""))


def _changes_four_eyes(obj, context: dict) -> bool:
    """A change of the organisation's one-person activation (``one_person_activation=`` different
    from what it is): who may put releases live alone is sensitive; a rename is not."""
    value = context.get("one_person_activation")
    return value is not None and value != getattr(obj, "one_person_activation", False)


def _disables(obj, context: dict) -> bool:
    """A change that turns a guardrail off (``enabled=False`` for one that is on)."""
    return context.get("enabled") is False and bool(getattr(obj, "enabled", True))


# operation → when it is sensitive. A sensitive operation, once the role, scope and object rules allow
# it, also needs a second factor checked within PRISMA_GLOW_STEP_UP_MINUTES when the caller is a person
# (``Principal.step_up_needed``); keys never step up: what needs a person has scope None above.
STEP_UP: dict[str, StepUpWhen] = {
    "release.approve": _always,
    "agent.deprecate": _always,
    "api_key.create": _always,
    "api_key.rotate": _always,
    "api_key.revoke": _always,
    "membership.add": _always,
    "membership.change_role": _always,
    "membership.remove": _always,
    "membership.grant_owner": _always,
    "organization.update": _changes_four_eyes,
    "model_provider.add": _sets_secret,
    "model_provider.change": _changes_secret,
    "model_provider.delete": _removes_secret,
    "guardrail.change": _disables,
    "guardrail.delete": _always,
    "knowledge_base.delete": _always,
    "user.manage": _always,
}

STEP_UP_REASON = "This is a sensitive operation: confirm it with a fresh code from your second factor."


def sensitive(operation: str, obj=None, **context) -> bool:
    """Whether ``operation`` (on ``obj``, with ``context``) needs a fresh second-factor check."""
    when = STEP_UP.get(operation)
    return when is not None and when(obj, context)


def _step_up_missing(access: Principal) -> bool:
    if access.api_key is not None:
        return False
    check = getattr(access, "step_up_needed", None)
    return bool(check()) if callable(check) else False


# --- The decision ---------------------------------------------------------------------------------
def rank(role: str | None) -> int:
    if role == SUPERUSER:
        return max(ROLE_RANK.values()) + 1
    return ROLE_RANK[Role(role)] if role else 0


def _rule_allows(access: Principal, name: str) -> Decision:
    rule = OPERATIONS[name]
    if access.api_key is not None:
        if rule.scope is None:
            return Decision(
                False,
                f"An API key cannot {rule.summary}; a signed-in {rule.role} must do it.",
                SESSION_REQUIRED,
            )
        if access.api_key.has_scope(rule.scope):
            return Decision(True)
        return Decision(False, f"This API key lacks the '{rule.scope}' scope needed to {rule.summary}.")
    if getattr(access, "is_superuser", False):
        return Decision(True)
    if access.role is None:
        return Decision(False, "You are not a member of this organisation.")
    if rank(access.role) >= rank(rule.role):
        return Decision(True)
    return Decision(
        False, f"Your role ({access.role}) cannot {rule.summary}; it needs {rule.role} or higher."
    )


def _authorise(access: Principal, operation: str, obj, context: dict) -> Decision:
    """The role or scope, then the object rules (no step-up)."""
    if operation not in OPERATIONS:
        raise KeyError(f"Unknown operation {operation!r}: declare it in prisma_glow.policy.OPERATIONS.")
    decision = _rule_allows(access, operation)
    if not decision:
        return decision
    for check in OBJECT_RULES.get(operation, ()):
        outcome = check(obj, context)
        if isinstance(outcome, Decision) and not outcome:
            return outcome
        if isinstance(outcome, str):
            further = _rule_allows(access, outcome)
            if not further:
                return further
    return Decision(True)


def decide(access: Principal, operation: str, obj=None, **context) -> Decision:
    """May ``access`` perform ``operation`` (on ``obj``, with ``context`` such as ``role=``) now?

    The role or scope first, then the object rules, then — for a sensitive operation and a person —
    a fresh second factor: a person allowed everything but the last gets ``STEP_UP_REQUIRED``."""
    decision = _authorise(access, operation, obj, context)
    if decision and sensitive(operation, obj, **context) and _step_up_missing(access):
        return Decision(False, STEP_UP_REASON, STEP_UP_REQUIRED)
    return decision


def allows(access: Principal, operation: str, obj=None, **context) -> bool:
    """Whether ``access`` may perform ``operation``, after a step-up if it needs one: what pages and
    menus offer (a sensitive button is shown, and asks for the code when pressed). Doors that act
    ask ``decide``."""
    return _authorise(access, operation, obj, context).allowed


def grantable_roles(access: Principal) -> list[str]:
    """The roles ``access`` may give a member (every role but owner unless it may grant owner)."""
    return [role for role in Role.values if allows(access, "membership.add", role=role)]


# --- The doors ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Door:
    """A staff-UI page (admin URL name; the method when it matters; the bulk action of a changelist),
    the operation it performs, and the API route and action that perform the same operation."""

    admin: str
    operation: str
    api: tuple[str, str] | None = None
    method: str = "GET"
    admin_action: str = ""


DOORS: tuple[Door, ...] = (
    # Agents.
    Door("admin:agents_agent_changelist", "agent.view", ("agent-list", "list")),
    Door("admin:agents_agent_detail", "agent.view", ("agent-detail", "retrieve")),
    Door("admin:agents_agent_change", "agent.view", ("agent-detail", "retrieve")),
    Door("admin:agents_agent_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_agent_change", "agent.change", ("agent-detail", "partial_update"), "POST"),
    Door("admin:agents_agent_add", "agent.add", ("agent-list", "create")),
    Door("admin:agents_agent_wizard", "agent.add", ("agent-list", "create")),
    Door("admin:agents_agent_wizard_step", "agent.add", ("agent-list", "create")),
    Door("admin:agents_agent_wizard_reset", "agent.add", ("agent-list", "create"), "POST"),
    Door("admin:agents_agent_delete", "agent.delete", ("agent-detail", "destroy")),
    Door("admin:agents_agent_lifecycle", "release.request", ("agent-activate", "activate"), "POST"),
    Door("admin:agents_agent_lifecycle", "agent.deprecate", ("agent-deprecate", "deprecate"), "POST"),
    Door("admin:agents_agent_clone", "agent.add", ("agent-clone", "clone"), "POST"),
    Door(
        "admin:agents_agent_changelist",
        "release.request",
        ("agent-activate", "activate"),
        "POST",
        admin_action="request_activation_selected",
    ),
    # Activation requests (agents.activation): the approval inbox and its decisions.
    Door("admin:approvals", "agent.view", ("activation-request-list", "list")),
    Door(
        "admin:agents_activation_approve",
        "release.approve",
        ("agent-activation-request-approve", "approve"),
        "POST",
    ),
    Door(
        "admin:agents_activation_refuse",
        "release.refuse",
        ("agent-activation-request-refuse", "refuse"),
        "POST",
    ),
    Door(
        "admin:agents_activation_cancel",
        "release.request",
        ("agent-activation-request-cancel", "cancel"),
        "POST",
    ),
    Door(
        "admin:agents_agent_changelist",
        "agent.deprecate",
        ("agent-deprecate", "deprecate"),
        "POST",
        admin_action="deprecate_selected",
    ),
    Door("admin:console:index", "agent.view", ("agent-list", "list")),
    Door("admin:console:run", "agent.execute", ("agent-execute", "execute"), "POST"),
    Door("admin:console:feedback", "execution.feedback", ("execution-feedback", "feedback"), "POST"),
    Door("admin:console:decide", "tool_call.decide", ("tool-approval-approve", "approve"), "POST"),
    Door("admin:console:decide", "tool_call.decide", ("tool-approval-refuse", "refuse"), "POST"),
    # Approval of tool calls: the inbox and a call's own page.
    Door("admin:tool_approvals", "tool_call.view", ("tool-approval-list", "list")),
    Door("admin:tool_approval", "tool_call.view", ("tool-approval-detail", "retrieve")),
    Door("admin:tool_approval", "tool_call.decide", ("tool-approval-approve", "approve"), "POST"),
    Door("admin:tool_approval", "tool_call.decide", ("tool-approval-refuse", "refuse"), "POST"),
    # Personas.
    Door("admin:agents_agent_personas", "persona.view", ("agent-persona-list", "list")),
    Door("admin:agents_agent_persona_new", "persona.add", ("agent-persona-list", "create")),
    Door("admin:agents_agent_persona_edit", "persona.add", ("agent-persona-list", "create")),
    Door("admin:agents_agent_persona_preview", "persona.add", ("agent-persona-list", "create"), "POST"),
    Door(
        "admin:agents_agent_persona_activate",
        "persona.change",
        ("agent-persona-activate", "activate"),
        "POST",
    ),
    # Assignments.
    Door("admin:agents_agent_assignments", "assignment.view", ("agent-tool-list", "list")),
    Door("admin:agents_agent_assignments", "assignment.add", ("agent-tool-list", "create"), "POST"),
    # Releases.
    Door("admin:agents_agent_releases", "release.view", ("agent-release-list", "list")),
    Door("admin:agents_agent_release_create", "release.add", ("agent-release-list", "create"), "POST"),
    Door("admin:agents_agent_release", "release.view", ("agent-release-detail", "retrieve")),
    Door("admin:agents_agent_release_diff", "release.view", ("agent-release-diff", "diff")),
    # Executions and feedback.
    Door("admin:agents_execution_changelist", "execution.view", ("execution-list", "list")),
    Door("admin:agents_execution_change", "execution.view", ("execution-detail", "retrieve")),
    Door("admin:agents_execution_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_execution_change", "execution.feedback", ("execution-feedback", "feedback"), "POST"),
    # Replay and evidence (issue 17): agents.replay, agents.evidence.
    Door("admin:agents_execution_replay", "execution.replay", ("execution-replay", "replay"), "POST"),
    Door("admin:agents_execution_comparison", "execution.view", ("execution-detail", "retrieve")),
    Door("admin:agents_execution_evidence", "execution.view", ("execution-evidence", "evidence")),
    Door("admin:console:compare", "agent.view", ("agent-list", "list")),
    Door("admin:console:compare", "agent.execute", ("agent-execute", "execute"), "POST"),
    Door("admin:agents_feedback_changelist", "execution.view", ("execution-detail", "retrieve")),
    Door("admin:agents_feedback_change", "execution.view", ("execution-detail", "retrieve")),
    Door("admin:agents_feedback_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_conversation_changelist", "execution.view", ("conversation-list", "list")),
    Door("admin:agents_conversation_change", "execution.view", ("conversation-detail", "retrieve")),
    Door("admin:agents_conversation_history", "audit.view", ("audit-event-list", "list")),
    # Learning examples.
    Door(
        "admin:agents_learningexample_changelist", "learning_example.view", ("learning-example-list", "list")
    ),
    Door(
        "admin:agents_learningexample_change",
        "learning_example.view",
        ("learning-example-detail", "retrieve"),
    ),
    Door("admin:agents_learningexample_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_learningexample_add", "learning_example.add", ("learning-example-list", "create")),
    Door(
        "admin:agents_learningexample_change",
        "learning_example.change",
        ("learning-example-detail", "partial_update"),
        "POST",
    ),
    Door(
        "admin:agents_learningexample_delete",
        "learning_example.delete",
        ("learning-example-detail", "destroy"),
    ),
    Door(
        "admin:agents_learningexample_changelist",
        "learning_example.change",
        ("learning-example-approve", "approve"),
        "POST",
        admin_action="approve_selected",
    ),
    Door(
        "admin:agents_learningexample_changelist",
        "learning_example.change",
        ("learning-example-reject", "reject"),
        "POST",
        admin_action="reject_selected",
    ),
    # Model providers.
    Door("admin:agents_modelprovider_changelist", "model_provider.view", ("model-provider-list", "list")),
    Door("admin:agents_modelprovider_change", "model_provider.view", ("model-provider-detail", "retrieve")),
    Door("admin:agents_modelprovider_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_modelprovider_add", "model_provider.add", ("model-provider-list", "create")),
    Door(
        "admin:agents_modelprovider_change",
        "model_provider.change",
        ("model-provider-detail", "partial_update"),
        "POST",
    ),
    Door("admin:agents_modelprovider_delete", "model_provider.delete", ("model-provider-detail", "destroy")),
    Door("admin:agents_modelprovider_test", "model_provider.test", None, "POST"),
    # Budgets.
    Door("admin:agents_budget_changelist", "budget.view", ("budget-list", "list")),
    Door("admin:agents_budget_change", "budget.view", ("budget-detail", "retrieve")),
    Door("admin:agents_budget_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:agents_budget_add", "budget.add", ("budget-list", "create")),
    Door("admin:agents_budget_change", "budget.change", ("budget-detail", "partial_update"), "POST"),
    Door("admin:agents_budget_delete", "budget.delete", ("budget-detail", "destroy")),
    # Tools.
    Door("admin:tools_tool_changelist", "tool.view", ("tool-list", "list")),
    Door("admin:tools_tool_change", "tool.view", ("tool-detail", "retrieve")),
    Door("admin:tools_tool_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:tools_tool_add", "tool.add", ("tool-list", "create")),
    Door("admin:tools_tool_change", "tool.change", ("tool-detail", "partial_update"), "POST"),
    Door("admin:tools_tool_delete", "tool.delete", ("tool-detail", "destroy")),
    Door("admin:tools_tool_test", "tool.test", ("tool-test", "test")),
    # Guardrails.
    Door("admin:guardrails_guardrail_changelist", "guardrail.view", ("guardrail-list", "list")),
    Door("admin:guardrails_guardrail_change", "guardrail.view", ("guardrail-detail", "retrieve")),
    Door("admin:guardrails_guardrail_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:guardrails_guardrail_add", "guardrail.add", ("guardrail-list", "create")),
    Door(
        "admin:guardrails_guardrail_change",
        "guardrail.change",
        ("guardrail-detail", "partial_update"),
        "POST",
    ),
    Door("admin:guardrails_guardrail_delete", "guardrail.delete", ("guardrail-detail", "destroy")),
    Door("admin:guardrails_guardrail_test", "guardrail.check", ("guardrail-check", "check"), "POST"),
    # Knowledge.
    Door("admin:knowledge_knowledgebase_changelist", "knowledge_base.view", ("knowledge-base-list", "list")),
    Door(
        "admin:knowledge_knowledgebase_change", "knowledge_base.view", ("knowledge-base-detail", "retrieve")
    ),
    Door("admin:knowledge_knowledgebase_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:knowledge_knowledgebase_add", "knowledge_base.add", ("knowledge-base-list", "create")),
    Door(
        "admin:knowledge_knowledgebase_change",
        "knowledge_base.change",
        ("knowledge-base-detail", "partial_update"),
        "POST",
    ),
    Door(
        "admin:knowledge_knowledgebase_delete", "knowledge_base.delete", ("knowledge-base-detail", "destroy")
    ),
    Door(
        "admin:knowledge_knowledgebase_search",
        "knowledge_base.search",
        ("knowledge-base-search-all", "search_all"),
    ),
    Door(
        "admin:knowledge_knowledgebase_documents", "document.view", ("knowledge-base-document-list", "list")
    ),
    Door(
        "admin:knowledge_knowledgebase_documents",
        "document.add",
        ("knowledge-base-document-list", "create"),
        "POST",
    ),
    Door("admin:knowledge_document_changelist", "document.view", ("knowledge-base-document-list", "list")),
    Door("admin:knowledge_document_change", "document.view", ("knowledge-base-document-detail", "retrieve")),
    Door("admin:knowledge_document_history", "audit.view", ("audit-event-list", "list")),
    Door(
        "admin:knowledge_document_change",
        "document.change",
        ("knowledge-base-document-reindex", "reindex"),
        "POST",
    ),
    Door("admin:knowledge_document_delete", "document.delete", ("knowledge-base-document-detail", "destroy")),
    # The organisation, members, keys, audit.
    Door("admin:tenancy_organization_changelist", "organization.view", ("organization", "get")),
    Door("admin:tenancy_organization_change", "organization.view", ("organization", "get")),
    Door("admin:tenancy_organization_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:tenancy_organization_change", "organization.update", ("organization", "patch"), "POST"),
    Door("admin:tenancy_membership_changelist", "membership.view", ("member-list", "list")),
    Door("admin:tenancy_membership_change", "membership.view", ("member-detail", "retrieve")),
    Door("admin:tenancy_membership_history", "audit.view", ("audit-event-list", "list")),
    # The admin's "add member" leads to inviting (the invitee's consent); POST /members/ is API-only.
    Door("admin:tenancy_membership_add", "membership.add", ("member-invite", "invite")),
    Door(
        "admin:tenancy_membership_change",
        "membership.change_role",
        ("member-detail", "partial_update"),
        "POST",
    ),
    Door("admin:tenancy_membership_delete", "membership.remove", ("member-detail", "destroy")),
    Door("admin:tenancy_apikey_changelist", "api_key.view", ("api-key-list", "list")),
    Door("admin:tenancy_apikey_change", "api_key.view", ("api-key-detail", "retrieve")),
    Door("admin:tenancy_apikey_history", "audit.view", ("audit-event-list", "list")),
    Door("admin:tenancy_apikey_add", "api_key.create", ("api-key-list", "create")),
    Door("admin:tenancy_apikey_rotate", "api_key.rotate", ("api-key-rotate", "rotate"), "POST"),
    Door("admin:tenancy_apikey_revoke", "api_key.revoke", ("api-key-revoke", "revoke"), "POST"),
    Door("admin:audit_auditevent_changelist", "audit.view", ("audit-event-list", "list")),
    Door("admin:audit_auditevent_change", "audit.view", ("audit-event-detail", "retrieve")),
    Door("admin:audit_auditevent_history", "audit.view", ("audit-event-list", "list")),
    # Evaluations: lists, a new suite, a suite's page (settings, requirement, cases, import, start a run),
    # its deletion, a case's edit and delete pages, a run's page (progress, marks), the comparison, and
    # "Save as test case" on an execution's page (evaluations.pages).
    Door("admin:evaluations_suite_changelist", "evaluation_suite.view", ("evaluation-suite-list", "list")),
    Door("admin:evaluations_suite_change", "evaluation_suite.view", ("evaluation-suite-detail", "retrieve")),
    Door("admin:evaluations_suite_add", "evaluation_suite.add", ("evaluation-suite-list", "create")),
    Door(
        "admin:evaluations_suite_settings",
        "evaluation_suite.change",
        ("evaluation-suite-detail", "partial_update"),
        "POST",
    ),
    Door("admin:evaluations_suite_delete", "evaluation_suite.delete", ("evaluation-suite-detail", "destroy")),
    Door(
        "admin:evaluations_suite_requirement",
        "evaluation_requirement.add",
        ("evaluation-requirement-list", "create"),
        "POST",
    ),
    Door(
        "admin:evaluations_suite_requirement",
        "evaluation_requirement.change",
        ("evaluation-requirement-detail", "partial_update"),
        "POST",
    ),
    Door(
        "admin:evaluations_suite_requirement_delete",
        "evaluation_requirement.delete",
        ("evaluation-requirement-detail", "destroy"),
        "POST",
    ),
    Door(
        "admin:evaluations_suite_case_add", "evaluation_case.add", ("evaluation-case-list", "create"), "POST"
    ),
    # A case's edit page is shown to those who may change it (its form holds the full texts).
    Door(
        "admin:evaluations_suite_case_edit",
        "evaluation_case.change",
        ("evaluation-case-detail", "partial_update"),
    ),
    Door(
        "admin:evaluations_suite_case_edit",
        "evaluation_case.change",
        ("evaluation-case-detail", "partial_update"),
        "POST",
    ),
    Door(
        "admin:evaluations_suite_case_delete", "evaluation_case.delete", ("evaluation-case-detail", "destroy")
    ),
    Door(
        "admin:evaluations_suite_import",
        "evaluation_case.add",
        ("evaluation-case-import-cases", "import_cases"),
        "POST",
    ),
    Door("admin:evaluations_suite_run", "evaluation_run.add", ("evaluation-run-list", "create"), "POST"),
    Door(
        "admin:evaluations_suite_save_as_case",
        "evaluation_case.add",
        ("execution-save-as-case-list", "create"),
        "POST",
    ),
    Door("admin:evaluations_evalrun_changelist", "evaluation_run.view", ("evaluation-run-list", "list")),
    Door("admin:evaluations_evalrun_change", "evaluation_run.view", ("evaluation-run-detail", "retrieve")),
    Door("admin:evaluations_evalrun_progress", "evaluation_run.view", ("evaluation-run-detail", "retrieve")),
    Door("admin:evaluations_evalrun_compare", "evaluation_run.view", ("evaluation-run-compare", "compare")),
    Door(
        "admin:evaluations_caseresult_mark",
        "evaluation_run.mark",
        ("evaluation-case-result-mark", "mark"),
        "POST",
    ),
    Door(
        "admin:evaluations_requirement_changelist",
        "evaluation_requirement.view",
        ("evaluation-requirement-list", "list"),
    ),
    # The requirements list is read-only: each row leads to the required suite's page, where the
    # requirement is set, changed and removed (evaluations_suite_requirement*).
    Door(
        "admin:evaluations_requirement_change",
        "evaluation_requirement.view",
        ("evaluation-requirement-detail", "retrieve"),
    ),
    # Invitations (owners and admins, as inviting: only owners invite owners or revoke their invitations).
    Door("admin:tenancy_invitation_add", "membership.add", ("member-invite", "invite")),
    Door("admin:tenancy_invitation_changelist", "invitation.view", ("invitation-list", "list")),
    Door("admin:tenancy_invitation_change", "invitation.view", ("invitation-detail", "retrieve")),
    Door("admin:tenancy_invitation_revoke", "membership.add", ("invitation-revoke", "revoke"), "POST"),
    Door("admin:tenancy_invitation_history", "audit.view", ("audit-event-list", "list")),
    # The staff guide: no API route does the same (the API documents itself at /api/v1/docs/).
    Door("admin:guide", "guide.view"),
)

# Staff-UI pages with no API counterpart, and why (their operation, when they perform one, is in DOORS
# or in the ModelAdmin's has_*_permission).
ADMIN_ONLY: dict[str, str] = {
    "admin:index": "the dashboard: every member, figures of their organisation only",
    "admin:login": "signing in",
    "admin:logout": "signing out",
    "admin:password_change": "a user's own password",
    "admin:password_change_done": "a user's own password",
    "admin:jsi18n": "the admin's translations",
    "admin:autocomplete": "Django's autocomplete: answers through the ModelAdmins' own permissions",
    "admin:view_on_site": "Django's redirect to an object's public page (none here)",
    "admin:app_list": "an app's index: lists only the models the user may view",
    "admin:switch_organization": "choosing among one's own memberships (the API's X-Organization header)",
    "admin:guide_image": "the staff guide's screenshots, for whoever may read the guide (guide.view)",
    "admin:tenancy_membership_unlock_login": "owners lift a member's sign-in lock (membership.unlock_login); "
    "the API has no sign-in to lock",
    "admin:console:clear": "forgets the console's conversation kept in the session",
    # Site administration: superusers only (Django's permissions, no organisation). Users' pages write
    # as user.manage (superusers only, with a fresh second factor: prisma_glow.tenancy.admin.UserAdmin).
    "admin:auth_user_changelist": "superusers only (Django's own model permissions, no organisation); "
    "its bulk deletion is user.manage",
    "admin:auth_user_add": "superusers only: user.manage",
    "admin:auth_user_change": "superusers only: user.manage (making superusers, staff, active)",
    "admin:auth_user_delete": "superusers only: user.manage",
    "admin:auth_user_history": "superusers only",
    "admin:auth_user_password_change": "superusers only: user.manage (setting another's password)",
    "admin:auth_group_changelist": "superusers only",
    "admin:auth_group_add": "superusers only",
    "admin:auth_group_change": "superusers only",
    "admin:auth_group_delete": "superusers only",
    "admin:auth_group_history": "superusers only",
    "admin:django_tasks_database_dbtaskresult_changelist": "superusers only",
    "admin:django_tasks_database_dbtaskresult_add": "superusers only",
    "admin:django_tasks_database_dbtaskresult_change": "superusers only",
    "admin:django_tasks_database_dbtaskresult_delete": "superusers only",
    "admin:django_tasks_database_dbtaskresult_history": "superusers only",
    "admin:tenancy_organization_add": "superusers only (manage.py or the admin create organisations)",
    "admin:tenancy_organization_delete": "nobody: an organisation with history cannot be deleted",
    # Pages whose model is written only by the runtime: nobody adds, changes or deletes them.
    "admin:agents_execution_add": "nobody: executions are written by the runtime",
    "admin:agents_execution_delete": "nobody: executions are the record of what ran",
    "admin:agents_feedback_add": "nobody: feedback is given on an execution",
    "admin:agents_feedback_delete": "nobody: feedback is part of the record",
    "admin:agents_conversation_add": "nobody: a conversation is started by its first run",
    "admin:agents_conversation_delete": "nobody: conversations are part of the record",
    "admin:knowledge_document_add": "documents are uploaded on their knowledge base's page",
    "admin:tenancy_apikey_delete": "nobody: keys are revoked, never deleted",
    "admin:audit_auditevent_add": "nobody: the audit log is append-only",
    "admin:audit_auditevent_delete": "nobody: the audit log is append-only",
    # A user's own sign-in and second factors (prisma_glow/accounts): the API has no sign-in.
    "admin:login_code": "signing in: the second step, a code for the pending sign-in",
    "admin:account_security": "a user's own second factors (enrol, backup codes, replace, remove)",
    # Invitations.
    "admin:tenancy_invitation_delete": "nobody: invitations are revoked, never deleted",
    # Evaluations: the suites', cases', requirement's and runs' pages are DOORS (evaluations.pages);
    # these are refused or read-only.
    "admin:evaluations_suite_history": "audit.view",
    "admin:evaluations_evalrun_add": "runs are started on their suite's page (evaluations_suite_run)",
    "admin:evaluations_evalrun_delete": "nobody: runs are the record of what was tested",
    "admin:evaluations_evalrun_history": "audit.view",
    "admin:evaluations_requirement_add": "requirements are set on the required suite's page "
    "(evaluations_suite_requirement)",
    "admin:evaluations_requirement_delete": "requirements are removed on the required suite's page "
    "(evaluations_suite_requirement_delete)",
    "admin:evaluations_requirement_history": "audit.view",
}

# API routes (route name, action) with no staff-UI counterpart, and why.
API_ONLY: dict[tuple[str, str], str] = {
    ("api-root", "get"): "the API's index of routes",
    ("schema", "get"): "the OpenAPI schema",
    ("swagger-ui", "get"): "the API's documentation page",
    ("conversation-turns", "turns"): "the conversation's page lists its turns (with the conversation)",
    ("agent-detail", "update"): "the admin's change form is a partial update",
    ("agent-persona-detail", "retrieve"): "the admin shows versions on the personas page",
    ("agent-persona-detail", "update"): "personas are versioned: the admin saves a new version",
    ("agent-persona-detail", "partial_update"): "personas are versioned: the admin saves a new version",
    ("agent-persona-detail", "destroy"): "the admin keeps every version",
    ("agent-persona-diff", "diff"): "the personas page's ?a=&b= comparison",
    ("agent-activation-request-list", "list"): "the agent's page shows its pending request; the "
    "approval inbox lists every pending one",
    ("agent-activation-request-list", "create"): "the agent page's request form is the lifecycle's "
    "activate (agent-activate), the same service",
    ("agent-activation-request-detail", "retrieve"): "the approval inbox shows each request",
    ("activation-request-detail", "retrieve"): "the approval inbox shows each request",
    ("agent-tool-detail", "retrieve"): "assignments page",
    ("agent-tool-detail", "update"): "assignments page",
    ("agent-tool-detail", "partial_update"): "assignments page",
    ("agent-tool-detail", "destroy"): "assignments page",
    ("agent-tool-reorder", "reorder"): "assignments page",
    ("agent-knowledge-list", "list"): "assignments page",
    ("agent-knowledge-list", "create"): "assignments page",
    ("agent-knowledge-detail", "retrieve"): "assignments page",
    ("agent-knowledge-detail", "update"): "assignments page",
    ("agent-knowledge-detail", "partial_update"): "assignments page",
    ("agent-knowledge-detail", "destroy"): "assignments page",
    ("agent-knowledge-reorder", "reorder"): "assignments page",
    ("agent-guardrail-list", "list"): "assignments page",
    ("agent-guardrail-list", "create"): "assignments page",
    ("agent-guardrail-detail", "retrieve"): "assignments page",
    ("agent-guardrail-detail", "update"): "assignments page",
    ("agent-guardrail-detail", "partial_update"): "assignments page",
    ("agent-guardrail-detail", "destroy"): "assignments page",
    ("agent-guardrail-reorder", "reorder"): "assignments page",
    ("learning-example-detail", "update"): "the admin's change form is a partial update",
    ("model-provider-detail", "update"): "the admin's change form is a partial update",
    ("budget-detail", "update"): "the admin's change form is a partial update",
    ("tool-detail", "update"): "the admin's change form is a partial update",
    ("guardrail-detail", "update"): "the admin's change form is a partial update",
    ("knowledge-base-detail", "update"): "the admin's change form is a partial update",
    ("knowledge-base-search", "search"): "the retrieval tester searches chosen knowledge bases",
    ("knowledge-base-reindex", "reindex"): "a document's page reindexes one document",
    ("knowledge-base-document-detail", "update"): "a document's page",
    ("knowledge-base-document-detail", "partial_update"): "a document's page",
    ("knowledge-base-document-chunk-list", "list"): "a document's page lists its chunks",
    ("knowledge-base-document-chunk-detail", "retrieve"): "a document's page lists its chunks",
    ("organization", "put"): "the admin's change form is a partial update",
    ("member-detail", "update"): "the admin's change form is a partial update",
    # Step-up: the admin asks for the code on the page of the sensitive operation itself.
    ("auth-step-up", "post"): "the staff UI asks for the code on the sensitive operation's own page",
    # Invitations.
    # Evaluations: the staff pages' forms are partial updates; the suite's page lists its cases.
    ("evaluation-suite-detail", "update"): "the suite page's settings form is a partial update",
    ("evaluation-case-list", "list"): "the suite's page lists its cases",
    ("evaluation-case-detail", "retrieve"): "the suite's page lists its cases; a case's own page is its "
    "edit form (evaluation_case.change)",
    ("evaluation-case-detail", "update"): "the case's edit page is a partial update",
    ("evaluation-requirement-detail", "update"): "the suite page's requirement form is a partial update",
    ("member-list", "create"): "the same invitation as member-invite (the staff UI's add member leads "
    "to inviting too); no account is attached without its consent",
}
