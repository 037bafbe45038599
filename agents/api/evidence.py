"""``POST /api/v1/executions/{id}/replay/`` and ``GET /api/v1/executions/{id}/evidence/``.

``ReplayEvidenceMixin`` is one of ``ExecutionViewSet``'s bases. Replay (``agents.replay``): the
``execution.replay`` operation (editor role, or the ``write`` scope), and only for a caller who may see the
original's client identifiers (an API key: the runs it made). Evidence (``agents.evidence``): anyone who
may read the execution (``execution.view``), identifiers masked as the execution's own detail answer masks
them; ``?format=html`` answers the printable page instead of JSON.
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.api.serializers import ExecutionDetailSerializer, ReplayRequestSerializer
from agents.evidence import evidence_pack, evidence_queryset
from agents.models import ExecutionSource
from agents.privacy import may_see_identifiers
from agents.replay import execution_replay
from prisma_glow.api.tenancy import get_access
from prisma_glow.api.throttling import execute_rate_limit
from prisma_glow.display import DEFAULT_CURRENCY


class EvidenceHTMLRenderer(renderers.BaseRenderer):
    """``?format=html``: the evidence pack as a printable page. An error is left to
    ``APIGuardMiddleware``, which answers it in the API's JSON error shape."""

    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400:
            return json.dumps(data)
        # Its cost in the organisation's currency (the access is resolved already: the pack was read).
        request = (renderer_context or {}).get("request")
        organization = get_access(request).organization if request is not None else None
        currency = getattr(organization, "currency", None) or DEFAULT_CURRENCY
        return render_to_string("agents/evidence.html", {"pack": data, "currency": currency})


def requester_label(access) -> str:
    """Who asked for a pack, as the pack names them."""
    if access.api_key is not None:
        return f"API key {access.api_key.name}"
    user = access.user
    return user.get_username() if user is not None and getattr(user, "is_authenticated", False) else ""


class ReplayEvidenceMixin:
    """Adds ``replay`` and ``evidence`` to the executions viewset."""

    operations = {"replay": "execution.replay", "evidence": "execution.view"}

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ``?format=`` with a bare 404; say what is accepted instead.
        if getattr(self, "action", None) == "evidence" and not force:
            requested = request.query_params.get("format")
            if requested not in (None, "json", "html"):
                self.format_kwarg = None
                raise exceptions.ValidationError({"format": ["Give json or html (default: json)."]})
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Replay an execution against a release",
        description=(
            "Runs the execution's input again, as of its `as_of` day, against `release` (a release "
            "number of the execution's agent; default: the agent's active release), and answers 201 with "
            "the new execution and its trace: a test run (`is_test` true) pinned to that release, its "
            "`replay_of` the original's id. A turn of a conversation is replayed on its own. Compare the "
            "two in the staff UI (the execution's page, “Replay”).\n\n"
            "The input is the original's real input, client identifiers included: members with the editor "
            "role (who see every run in full) may replay any run of the organisation; an API key needs "
            "the `write` scope and may replay only the runs it made itself (403 otherwise, nothing runs). "
            "An agent without an active release and no `release` given answers 409; an unknown release "
            "400; a budget that cannot cover the run 429 `budget_exceeded`."
        ),
        request=ReplayRequestSerializer,
        responses={
            201: ExecutionDetailSerializer,
            400: OpenApiResponse(description="Unknown release number."),
            403: OpenApiResponse(description="Not allowed to replay this run."),
            409: OpenApiResponse(description="No active release, or the release can no longer run."),
        },
        examples=[
            OpenApiExample("Against release 3", request_only=True, value={"release": 3}),
            OpenApiExample("Against the active release", request_only=True, value={}),
        ],
    )
    @execute_rate_limit
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        execution = self.get_object()
        payload = ReplayRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        number = payload.validated_data.get("release")
        release = None if number is None else services.release_for(agent=execution.agent, number=number)
        try:
            replay = execution_replay(
                execution=execution,
                actor=self.access.actor,
                viewer=self.access,
                release=release,
                source=ExecutionSource.API,
            )
        except PermissionDenied as exc:  # the 403 says why (the handler's would not)
            raise exceptions.PermissionDenied(str(exc)) from exc
        context = {**self.get_serializer_context(), "opened_alone": True}
        return Response(
            ExecutionDetailSerializer(replay, context=context).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="An execution's evidence pack",
        description=(
            "Everything that shows what answered and why, in one document (`format` "
            "`prisma-glow-evidence`, `format_version` 1): the release and its content hash (or "
            '`"draft"`), the input and the answer, every passage retrieved with its document, page and '
            "the document's SHA-256, the guardrail verdicts, the tool calls with their arguments and "
            "results, provider and model, tokens and cost, and the execution's audit events with their "
            "chain hashes (`hash`, `prev_hash`, `hash_version`), with `generated_at`.\n\n"
            "Client identifiers are masked (`identifiers_masked` true) unless the caller may see them: "
            "members with the editor role or above, and the run's own requester (the same rule as the "
            "execution's detail). `?format=html` answers a printable HTML page. "
            "`manage.py verify_evidence FILE` checks a saved pack against the database."
        ),
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=["json", "html"],
                description="`html`: the printable page. Default: JSON.",
            )
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/html"): OpenApiTypes.STR},
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[renderers.JSONRenderer, EvidenceHTMLRenderer],
    )
    def evidence(self, request, pk=None):
        execution = self.get_object()
        execution = evidence_queryset().get(pk=execution.pk)
        visible = may_see_identifiers(self.access, execution, opened_alone=True)
        pack = evidence_pack(execution=execution, visible=visible, generated_for=requester_label(self.access))
        return Response(pack)
