"""The admin's live test console.

A staff member picks one of their organisation's agents (``?agent=ID``) and a persona version,
sends a message and watches the answer stream in, followed by the execution's trace. Successive
messages continue one conversation (``agents.runtime.conversations``: the model reads the earlier
turns, through the privacy boundary): the form posts its id (``conversation``, hidden), and the session
keeps the id of the user's current conversation with each agent, so a form posted before the first
turn had one (a streamed first turn does not reload the page) continues it too. "New conversation"
forgets it: the next message starts another. The page shows the conversation's turns and takes
feedback on each answer in place.

Streaming: ``run`` answers ``Accept: text/event-stream`` requests (``agents/static/console/console.js``
posts the form with ``fetch``) with the runtime's one stream protocol (``agents.runtime.streaming``,
the same as the API's: ``step``, ``delta``, ``retract``, ``execution``, ``error``). The console adds
``html`` to two payloads: to ``step`` the step rendered for the trace, to ``execution`` the finished
turn (restored answer, citations, trace, feedback form). Deltas are plain text, inserted as text.

Without JavaScript the same form posts normally, runs ``agents.runtime.execute`` and redirects back.

Rights: every role sees the console; editors and above run agents (always the draft, the live
configuration, as test runs: ``is_test=True``) and give feedback; another organisation's agent or execution answers 404.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from agents.admin.approvals import decide_approval
from agents.console.forms import FeedbackForm, RunForm
from agents.console.trace import present_step, present_turn
from agents.models import (
    Agent,
    Conversation,
    Execution,
    ExecutionSource,
    Feedback,
    ToolApproval,
    ToolApprovalStatus,
)
from agents.runtime import AgentNotRunnable, ConversationBusy, StreamBody, execute, execute_stream
from agents.runtime.conversations import NEW
from agents.runtime.serialize import execution_to_dict
from agents.runtime.streaming import RunStream, encode
from agents.selectors import IDENTIFIERS_SENT_NOTICE, agent_screens_identifiers
from agents.services import feedback_create
from prisma_glow.admin.base import admin_require
from prisma_glow.admin.scoping import get_admin_access, scope_queryset, scoped_get
from prisma_glow.exceptions import BudgetExceeded

logger = logging.getLogger(__name__)

#: The session's {agent id: id of the user's current conversation with it}.
SESSION_KEY = "console_conversations"
#: Turns shown (the conversation's latest).
MAX_TURNS = 30


# --- helpers ------------------------------------------------------------------------------------


def _require_member(request):
    access = get_admin_access(request)
    if not access.can_view:
        raise PermissionDenied("You are not a member of any organisation.")
    return access


def _require(request, operation: str) -> None:
    """The console asks ``prisma_glow.policy`` like every other door (403 with its reason)."""
    _require_member(request)
    admin_require(request, operation)


def _agents(request):
    return scope_queryset(Agent.objects.select_related("organization"), request).order_by("name", "id")


def _wants_stream(request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def _wants_fragment(request) -> bool:
    return bool(getattr(request, "htmx", False)) or _wants_stream(request)


def _console_url(agent: Agent | None, anchor: str = "") -> str:
    url = reverse("admin:console:index")
    if agent is not None:
        url += "?" + urlencode({"agent": agent.pk})
    return url + (f"#{anchor}" if anchor else "")


def _conversations(request):
    return scope_queryset(Conversation.objects.all(), request)


def _conversation(request, agent: Agent) -> Conversation | None:
    """The user's current conversation with ``agent`` (kept in the session), if it is still one of the
    organisation's with this agent."""
    kept = request.session.get(SESSION_KEY, {}).get(str(agent.pk))
    if not isinstance(kept, int):  # none, or the list of execution ids sessions held before
        return None
    return _conversations(request).filter(pk=kept, agent=agent).first()


def _remember(request, agent: Agent, execution: Execution) -> None:
    """Keep ``execution``'s conversation as the user's current one with ``agent`` (an id only)."""
    conversations = dict(request.session.get(SESSION_KEY, {}))
    conversations[str(agent.pk)] = execution.conversation_id
    request.session[SESSION_KEY] = conversations


def _turn_queryset(request):
    return Execution.objects.select_related("persona", "agent").prefetch_related(
        "steps",
        Prefetch("feedback", queryset=Feedback.objects.filter(user=request.user).order_by("created_at")),
        Prefetch(
            "tool_approvals",
            queryset=ToolApproval.objects.filter(status=ToolApprovalStatus.PENDING),
            to_attr="pending_approvals",
        ),
    )


def _turns(request, conversation: Conversation | None) -> list[dict]:
    if conversation is None:
        return []
    executions = _turn_queryset(request).filter(conversation=conversation).order_by("-turn")[:MAX_TURNS]
    return [present_turn(e) for e in reversed(executions)]


def _render_turn(request, execution: Execution) -> str:
    execution = _turn_queryset(request).get(pk=execution.pk)
    return render_to_string("agents/console/_turn.html", {"turn": present_turn(execution)}, request=request)


def _page(
    request,
    *,
    agent: Agent | None,
    form: RunForm,
    status: int = 200,
    error: str = "",
    conversation: Conversation | None = None,
):
    access = get_admin_access(request)
    agents = list(_agents(request))
    context = {
        **admin.site.each_context(request),
        "title": "Test console",
        "agents": agents,
        "agent": agent,
        "form": form,
        "conversation": conversation,
        "turns": _turns(request, conversation),
        "can_run": access.may("agent.execute"),
        "run_error": error,
        "is_test_run": agent is not None,
        "identifiers_notice": IDENTIFIERS_SENT_NOTICE
        if agent is not None and not agent_screens_identifiers(agent=agent)
        else "",
    }
    return TemplateResponse(request, "agents/console/console.html", context, status=status)


def _fragment(request, template: str, context: dict, status: int) -> HttpResponse:
    return HttpResponse(render_to_string(template, context, request=request), status=status)


# --- views --------------------------------------------------------------------------------------


@require_GET
def console(request):
    """The console page: agent picker, persona version, the conversation so far and the message box."""
    _require(request, "agent.view")
    agent = conversation = None
    agent_id = request.GET.get("agent", "").strip()
    if agent_id:
        agent = scoped_get(_agents(request), request, pk=agent_id)
        conversation = _conversation(request, agent)
    form = RunForm(
        agents=_agents(request),
        agent=agent,
        conversations=_conversations(request),
        initial={"conversation": conversation.pk if conversation else None},
    )
    return _page(request, agent=agent, form=form, conversation=conversation)


@require_POST
def run(request):
    """Run the chosen agent on the message: a Server-Sent Events stream, or a redirect without JS."""
    _require(request, "agent.execute")
    agents = _agents(request)
    agent_id = request.POST.get("agent", "").strip()
    agent = scoped_get(agents, request, pk=agent_id) if agent_id else None
    form = RunForm(request.POST, agents=agents, agent=agent, conversations=_conversations(request))
    current = _conversation(request, agent) if agent is not None else None
    if not form.is_valid():
        if _wants_fragment(request):
            return _fragment(request, "agents/console/_errors.html", {"form": form}, status=400)
        return _page(request, agent=agent, form=form, status=400, conversation=current)

    agent, persona, message = (form.cleaned_data[k] for k in ("agent", "persona", "message"))
    conversation = form.cleaned_data["conversation"] or current
    options = {
        "actor": request.user,
        "source": ExecutionSource.CONSOLE,
        "persona": persona,
        # The console runs the draft — the configuration as it is now, released or not — always as a
        # test (``agents.runtime.loading.load``); API runs run the active release.
        "is_test": True,
        "conversation": conversation or NEW,
    }
    if not _wants_stream(request):
        try:
            execution = execute(agent, message, **options)
        except (AgentNotRunnable, ConversationBusy) as exc:
            return _page(request, agent=agent, form=form, status=409, error=str(exc), conversation=current)
        except BudgetExceeded as exc:
            # Recorded ``refused`` with the reason: the turn shows it like any other.
            execution = exc.execution
        _remember(request, agent, execution)
        return HttpResponseRedirect(_console_url(agent, f"turn-{execution.pk}"))

    try:
        # The runtime refuses an agent that may not run before recording anything (and before the
        # iterator exists): the answer can still be an ordinary error response.
        events = execute_stream(agent, message, **options)
    except (AgentNotRunnable, ConversationBusy) as exc:
        return _fragment(request, "agents/console/_errors.html", {"run_error": str(exc)}, status=409)
    except BudgetExceeded as exc:
        # Refused before the stream started (recorded ``refused``): said like any refusal, 429.
        return _fragment(request, "agents/console/_errors.html", {"run_error": exc.messages[0]}, status=429)
    response = StreamingHttpResponse(
        StreamBody(_stream(request, agent, events), events), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    return response


def _stream(request, agent: Agent, events: RunStream) -> Iterator[str]:
    """The run's events in the stream protocol, with the console's ``html`` (see the module docstring)."""

    def step(data: dict) -> dict:
        html = render_to_string("agents/console/_step.html", {"step": present_step(data)}, request=request)
        return {**data, "html": html}

    def finished(execution: Execution) -> dict:
        # The response (and the session middleware) finished before this generator ran: save now.
        _remember(request, agent, execution)
        request.session.save()
        return {**execution_to_dict(execution), "html": _render_turn(request, execution)}

    return encode(events, step=step, execution=finished)


@require_POST
def decide(request, approval_id: int):
    """Approve (as asked) or refuse a paused turn's tool call in place, through the services the API
    and the approval inbox use; back to the turn, the run resuming in the background. Editing the
    arguments is on the call's own page (``admin:tool_approval``)."""
    _require(request, "tool_call.decide")
    approval = scoped_get(ToolApproval.objects.select_related("execution__agent"), request, pk=approval_id)
    action = "refuse" if request.POST.get("action") == "refuse" else "approve"
    done, form = decide_approval(request, approval, action, request.POST)
    if not done:
        problems = [f"{' '.join(errors)}" for errors in form.errors.values()]
        messages.error(request, "The call was not decided: " + " ".join(problems))
    execution = approval.execution
    return HttpResponseRedirect(_console_url(execution.agent, f"turn-{execution.pk}"))


@require_POST
def feedback(request, execution_id: int):
    """Record a thumbs up or down (and a correction) on one of the organisation's executions, in place."""
    _require(request, "execution.feedback")
    execution = scoped_get(
        Execution.objects.select_related("agent", "organization"), request, pk=execution_id
    )
    form = FeedbackForm(request.POST)
    saved = None
    if form.is_valid():
        try:
            saved = feedback_create(
                execution=execution,
                actor=request.user,
                rating=form.cleaned_data["rating"],
                correction=form.cleaned_data["correction"],
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
    if not _wants_fragment(request):
        if saved is None:
            errors = [m for field_errors in form.errors.values() for m in field_errors]
            messages.error(request, "Feedback not recorded: " + " ".join(errors))
        else:
            messages.success(request, "Thank you: your feedback was recorded.")
        return HttpResponseRedirect(_console_url(execution.agent, f"turn-{execution.pk}"))
    # htmx swaps only 2xx answers: the form comes back with its errors beside the fields.
    context = {"execution": execution, "form": form, "feedback": [saved] if saved else []}
    return _fragment(request, "agents/console/_feedback.html", context, status=200)


@require_POST
def clear(request):
    """Start a new conversation with the agent: the next message starts one (the earlier
    conversation and its executions stay in the records)."""
    _require_member(request)
    agent = scoped_get(_agents(request), request, pk=request.POST.get("agent", ""))
    conversations = dict(request.session.get(SESSION_KEY, {}))
    conversations.pop(str(agent.pk), None)
    request.session[SESSION_KEY] = conversations
    return HttpResponseRedirect(_console_url(agent))


def _add_service_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)
