"""``/api/v1/``: activation requests (``agents.activation``) — an agent's under
``/agents/{agent_pk}/activation-requests/`` (request, approve, refuse, cancel) and the organisation's
inbox at ``/activation-requests/?status=pending``.

Who may do what is ``prisma_glow.policy``'s: ``release.request`` (editor, ``write`` key),
``release.approve`` (admin or owner, never a key, a fresh second factor), ``release.refuse`` (admin or
owner, never a key); reading needs ``agent.view``. The four-eyes rule (not the requester) depends on
the request, so the service checks it whatever door calls it: the requester approving (without
one-person activation), or anyone but the requester cancelling, answers 409 with the reason.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import activation, services
from agents.api.activation_serializers import (
    APPROVED_EXAMPLE,
    PENDING_EXAMPLE,
    ActivationCancelSerializer,
    ActivationRefuseSerializer,
    ActivationRequestCreateSerializer,
    ActivationRequestFilterSet,
    ActivationRequestSerializer,
    activation_requests,
)
from agents.api.views import AgentChildMixin
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.viewsets import OrganizationScopedMixin

# --- An agent's requests ----------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("agent_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The agent's id.")
    ]
)
@extend_schema_view(
    list=extend_schema(
        summary="List the agent's activation requests",
        description="Newest first, every status.",
        examples=[OpenApiExample("Pending", value=PENDING_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(summary="Retrieve an activation request"),
    create=extend_schema(
        summary="Request the activation of a release",
        description="An editor, or an API key with the `write` scope (a CI pipeline), asks for release "
        "`release` to go live; another admin or owner approves it. A pending request of the agent is "
        "superseded. 409 when that release is already active; 400 for a release the agent does not have.",
        request=ActivationRequestCreateSerializer,
        responses={201: ActivationRequestSerializer},
        examples=[
            OpenApiExample(
                "Release 4",
                request_only=True,
                value={"release": 4, "notes": "Adds the 2026 reverse-charge rules; suite run 41 passed."},
            ),
            OpenApiExample("Pending", value=PENDING_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
)
class AgentActivationRequestViewSet(
    AgentChildMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """``/agents/{agent_pk}/activation-requests/``: request, approve, refuse, cancel."""

    queryset = activation_requests()
    serializer_class = ActivationRequestSerializer
    parser_classes = [JSONParser]
    filterset_class = ActivationRequestFilterSet
    ordering_fields = ["requested_at"]
    ordering = ["-requested_at", "-id"]
    operations = {
        "list": "agent.view",
        "retrieve": "agent.view",
        "create": "release.request",
        "approve": "release.approve",
        "refuse": "release.refuse",
        "cancel": "release.request",
    }

    def _answer(self, request_row, code=status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=request_row.pk)).data, status=code)

    def create(self, request, *args, **kwargs):
        payload = ActivationRequestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        release = services.release_for(agent=self.agent, number=payload.validated_data["release"])
        row = activation.activation_request_create(
            agent=self.agent,
            release=release,
            actor=self.access.actor,
            notes=payload.validated_data.get("notes", ""),
        )
        return self._answer(row, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve an activation request",
        description="An admin or owner who did not request it (unless the organisation allows one-person "
        "activation), signed in — an API key gets 403 `session_required` — with a second factor checked "
        "within PRISMA_GLOW_STEP_UP_MINUTES (403 `step_up_required` until `POST /api/v1/auth/step-up/`). "
        "The requester answers 409 with the four-eyes rule as the message. The activation gates run first: a release they refuse answers 409 with each failure under "
        "`errors.gates` (failing cases named) and the request stays pending, to approve after a re-run. "
        "Then the release goes live. Audited with the release hash and the gates' evidence.",
        request=None,
        responses={200: ActivationRequestSerializer},
        examples=[OpenApiExample("Approved", value=APPROVED_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, agent_pk=None, pk=None):
        row = self.get_object()
        return self._answer(activation.activation_request_approve(request=row, actor=self.access.actor))

    @extend_schema(
        summary="Refuse an activation request",
        description="An admin or owner, signed in, says why (`reason`, required); nothing goes live.",
        request=ActivationRefuseSerializer,
        responses={200: ActivationRequestSerializer},
        examples=[
            OpenApiExample(
                "Refuse",
                request_only=True,
                value={"reason": "Case 'reverse charge, B2B services' must pass; re-run after the fix."},
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def refuse(self, request, agent_pk=None, pk=None):
        row = self.get_object()
        payload = ActivationRefuseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._answer(
            activation.activation_request_refuse(
                request=row, actor=self.access.actor, reason=payload.validated_data["reason"]
            )
        )

    @extend_schema(
        summary="Cancel an activation request",
        description="The requester (the same user or API key) withdraws a pending request; anyone else "
        "gets 409 (an admin refuses instead).",
        request=ActivationCancelSerializer,
        responses={200: ActivationRequestSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, agent_pk=None, pk=None):
        row = self.get_object()
        payload = ActivationCancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return self._answer(
            activation.activation_request_cancel(
                request=row, actor=self.access.actor, reason=payload.validated_data.get("reason", "")
            )
        )


# --- The organisation's inbox -----------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List the organisation's activation requests",
        description="The approval inbox: `?status=pending` for what awaits a decision (repeatable; also "
        "`agent`). Newest first.",
        examples=[OpenApiExample("Pending", value=PENDING_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(summary="Retrieve an activation request"),
)
class ActivationRequestViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """``/activation-requests/``: every agent's requests, for the approval inbox."""

    queryset = activation_requests()
    serializer_class = ActivationRequestSerializer
    filterset_class = ActivationRequestFilterSet
    ordering_fields = ["requested_at"]
    ordering = ["-requested_at", "-id"]
    operations = {"list": "agent.view", "retrieve": "agent.view"}
