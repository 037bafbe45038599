"""``POST /api/v1/agents/{id}/execute/``: run an agent, as JSON or as Server-Sent Events.

``ExecuteActionMixin`` is one of ``AgentViewSet``'s bases. Members need the editor role, API keys the
``execute`` scope; the stricter execute rate limit applies. Only active agents run here (409 with the
reason otherwise): drafts are tested in the admin console.

Conversations: every run through the API is a turn of one. Without ``conversation`` the run starts a
new one (its id is ``conversation`` in the answer); with it, the run continues that conversation and
its earlier turns go to the model (``agents.runtime.conversations``). The conversation must be one of
the caller's organisation (otherwise the same 400 as an unknown id: nothing says it exists) and of
this agent (400 naming its agent). A member who may run agents (editor or above) may continue any of
the organisation's conversations, as they may read its executions in full; an API key only the
conversations it started (403). A turn asked while the previous one is still running is a 409.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.api.serializers import ExecutionDetailSerializer
from agents.models import Conversation, Execution, ExecutionSource, ExecutionStatus
from agents.runtime import (
    AgentNotRunnable,
    ConversationBusy,
    PersonaNotFound,
    ReleaseAndPersonaPinned,
    ReleaseNotFound,
    StreamBody,
    execute,
    execute_stream,
)
from agents.runtime.conversations import NEW
from agents.runtime.loading import check_pins
from agents.runtime.pipeline import MAX_INPUT_CHARS
from agents.runtime.streaming import encode, sse
from prisma_glow.api.errors import Conflict
from prisma_glow.api.throttling import execute_rate_limit


class ExecuteRequestSerializer(serializers.Serializer):
    """What to ask the agent; optionally which release runs (default: the active one) and as of which day."""

    input = serializers.CharField(max_length=MAX_INPUT_CHARS, trim_whitespace=False)
    release = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="A release number of this agent to run: the active one or an earlier release that was "
        "once activated (approved); one never approved answers 409. Default: the active release.",
    )
    persona = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Deprecated: pin a `release`. A persona version number: runs the newest approved "
        "release with that persona version; a version no approved release uses answers 409, one the "
        "agent does not have 404.",
    )
    as_of = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="Search the knowledge as of this day (documents in force then). Default: today.",
    )
    conversation = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The id of a conversation with this agent to continue (its earlier turns go to the "
        "model). Leave it out to start a new conversation; its id is in the answer.",
    )

    # The schema states the one rule between fields (prisma_glow.api.schema.AutoSchema): a release and
    # a persona version are not both pinned (either, or both, may be left out or null).
    request_schema_any_of = [
        {"properties": {"release": {"not": {"type": "integer"}}}},
        {"properties": {"persona": {"not": {"type": "integer"}}}},
    ]

    def validate_input(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Ask a question: the input cannot be empty.")
        return value

    def validate(self, attrs):
        # The runtime's rule (agents.runtime.loading.check_pins), answered as bad input up front.
        try:
            check_pins(release=attrs.get("release"), persona=attrs.get("persona"))
        except ReleaseAndPersonaPinned as exc:
            raise serializers.ValidationError({"release": [str(exc)]})
        return attrs


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets clients send ``Accept: text/event-stream``. Errors before the stream starts are answered in
    JSON, the API's one error shape (``APIGuardMiddleware`` converts the ``error`` event rendered here)."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return sse("error", data).encode()


TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off"}


def _stream_requested(query_params) -> bool:
    """``?stream=``: true or false; anything else is a 400 (like the boolean filters), rather than
    silently answering in JSON a client that asked for a stream (``?stream=True ``, ``?stream=sse``)."""
    if "stream" not in query_params:
        return False
    values = {value.lower() for value in query_params.getlist("stream")}
    if values <= TRUE_VALUES:
        return True
    if values <= FALSE_VALUES:
        return False
    raise exceptions.ValidationError({"stream": ["Give true or false."]})


class ExecuteActionMixin:
    """Adds the ``execute`` action to the agent viewset."""

    operations = {"execute": "agent.execute"}

    def _conversation(self, agent, conversation_id: int | None):
        """The conversation the run continues (see the module's docstring), or ``NEW``."""
        if conversation_id is None:
            return NEW
        conversation = (
            Conversation.objects.filter(organization=self.organization, pk=conversation_id)
            .select_related("agent")
            .first()
        )
        if conversation is None:
            # A body naming an object the caller cannot see: 404 (prisma_glow.api.errors).
            raise exceptions.ValidationError(
                {"conversation": [f"No conversation {conversation_id} in your organisation."]},
                code="does_not_exist",
            )
        if conversation.agent_id != agent.pk:
            raise exceptions.ValidationError(
                {
                    "conversation": [
                        f"Conversation {conversation_id} is with the agent '{conversation.agent.name}': "
                        "continue it with that agent, or leave `conversation` out to start a new one."
                    ]
                }
            )
        key = self.access.api_key
        if key is not None and conversation.started_by_api_key_id != key.pk:
            raise exceptions.PermissionDenied(
                "An API key continues only the conversations it started; leave `conversation` out "
                "to start a new one."
            )
        return conversation

    def _execution_payload(self, execution: Execution) -> dict:
        """The answer: the finished execution and its steps as the run holds them (nothing read back)."""
        return ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data

    @extend_schema(
        summary="Run an agent",
        description=(
            "Runs an **active** agent on `input` and returns the execution with its full trace (201): "
            "status `completed`, `blocked` (a guardrail stopped it; `error` says which) or `failed` "
            "(`error` gives the reason, e.g. `provider timed out after 30 s`). Draft and deprecated "
            "agents answer 409. `persona` picks a persona version (default: the active one).\n\n"
            "Budgets: before each provider call the run reserves the call's largest possible cost in "
            "the organisation's and the agent's budgets. A run they cannot cover is recorded `refused` "
            "and answered 429 `budget_exceeded`, with `Retry-After` (seconds until the budget's period "
            "ends) and the reason in `message`; a stream is refused before it starts (the same 429 "
            "JSON), and a streamed run that runs out between tool rounds ends with an `execution` event "
            "whose `status` is `refused`.\n\n"
            "Every run is a turn of a conversation: without `conversation` a new one starts (its id is "
            "`conversation` in the answer, `turn` is 1); with the id of one of this agent's "
            "conversations the run continues it, and its earlier completed turns go to the model "
            "(through the privacy boundary, like everything sent). An unknown id, or another "
            "organisation's, is a 400; another agent's conversation a 400; an API key may continue only "
            "the conversations it started (403); a turn asked while the previous one runs, a 409.\n\n"
            "With `?stream=true` the answer is `text/event-stream` (the components `Stream…Event`, "
            "docs/api.md “Streaming”): `step` events as each step is recorded, `delta` events "
            '(`{"text": …}`) with each sentence of the answer once the output guardrails that can '
            "decide on a sentence have passed it, a `retract` event "
            '(`{"reason": …, "text": …}`) when a guardrail blocks what was shown, an `error` event '
            "if the stream cannot go on, and a final `execution` event with the same body as the "
            "JSON answer.\n\n"
            "Approval of tool calls: when the model calls a tool that requires approval (the tool's "
            "or its assignment's `requires_approval`), the run pauses with status `awaiting_approval` "
            "and the answer is **202** with the execution so far; its `tool_approval` names the call "
            "(id, tool, the arguments as the model wrote them, expiry). A person with the editor role "
            "approves or refuses it (`/tool-approvals/{id}/approve/`, `…/refuse/`, the approval inbox "
            "or the console) and the run resumes in the background; poll `/executions/{id}/`. A stream "
            "sends an `approval` event, then the `execution`, and ends.\n\n"
            "Members need the editor role; API keys the `execute` scope."
        ),
        parameters=[
            OpenApiParameter(
                "stream",
                OpenApiTypes.BOOL,
                OpenApiParameter.QUERY,
                description="Answer as Server-Sent Events.",
            )
        ],
        request=ExecuteRequestSerializer,
        responses={
            (201, "application/json"): OpenApiResponse(
                ExecutionDetailSerializer,
                description="The execution, with its steps; with `?stream=true`, Server-Sent Events "
                "(`text/event-stream`) ending with an `execution` event that carries the same body.",
            ),
            (202, "application/json"): OpenApiResponse(
                ExecutionDetailSerializer,
                description="The run paused (`awaiting_approval`): the model called a tool that "
                "requires a person's approval; `tool_approval` names the call.",
            ),
            (201, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Server-Sent Events: `step`, `delta`, `retract`, `approval`, `execution`, `error` "
                "(each event's body is the component named by `x-events`).",
            ),
            400: OpenApiResponse(description="Invalid input, persona or conversation."),
            403: OpenApiResponse(description="An API key continuing a conversation it did not start."),
            409: OpenApiResponse(
                description="The agent may not run (draft, deprecated, no active release), the pinned "
                "release was never approved, the pinned persona version is in no approved release, or "
                "the conversation's previous turn is still running."
            ),
        },
        examples=[
            OpenApiExample(
                "Question", request_only=True, value={"input": "What is the VAT on €1,000 at 19%?"}
            ),
            OpenApiExample(
                "Follow-up in a conversation",
                request_only=True,
                value={"input": "And at 7%?", "conversation": 42},
            ),
        ],
    )
    @execute_rate_limit
    @action(
        detail=True,
        methods=["post"],
        renderer_classes=[renderers.JSONRenderer, EventStreamRenderer],
    )
    def execute(self, request, pk=None):
        agent = self.get_object()
        stream = _stream_requested(request.query_params)
        payload = ExecuteRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        arguments = {
            "actor": self.access.actor,
            "source": ExecutionSource.API,
            "persona": payload.validated_data.get("persona"),
            "release": payload.validated_data.get("release"),
            "as_of": payload.validated_data.get("as_of"),
            "is_test": False,
            "conversation": self._conversation(agent, payload.validated_data.get("conversation")),
        }
        text = payload.validated_data["input"]
        try:
            if stream:
                events = execute_stream(agent, text, **arguments)
            else:
                execution = execute(agent, text, **arguments)
        except ReleaseNotFound as exc:
            # The body names a release (PersonaNotFound: a persona version) that is not there: 404,
            # like any unknown object named in a body (prisma_glow.api.errors).
            raise exceptions.ValidationError({"release": [str(exc)]}, code="does_not_exist")
        except PersonaNotFound as exc:
            raise exceptions.ValidationError({"persona": [str(exc)]}, code="does_not_exist")
        except (AgentNotRunnable, ConversationBusy) as exc:
            # One that exists but may not run (a release never approved, a persona version no approved
            # release uses, a draft agent): 409.
            raise Conflict(str(exc))
        if not stream:
            paused = execution.status == ExecutionStatus.AWAITING_APPROVAL
            return Response(
                self._execution_payload(execution),
                status=status.HTTP_202_ACCEPTED if paused else status.HTTP_201_CREATED,
            )

        body = encode(events, execution=self._execution_payload)
        response = StreamingHttpResponse(
            StreamBody(body, events), status=status.HTTP_201_CREATED, content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
