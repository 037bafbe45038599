"""``/api/v1/tool-approvals/``: the tool calls that wait for a person, and the decisions on them.

A run whose model called a tool that requires approval pauses (``awaiting_approval``); its request is
listed here (``GET``, newest first; ``?status=pending`` for the inbox) with the arguments as the model
wrote them. A person with the editor role — signed in, never an API key (``session_required``) —
approves it (``POST …/{id}/approve/``, optionally with edited ``arguments``, validated against the
tool's input schema) or refuses it (``POST …/{id}/refuse/`` with a ``reason``); the run then resumes in
the background. Reading needs the viewer role or the ``read`` scope. The arguments follow the
identifier rule (``agents.privacy``): masked in the list, in full on the detail for an editor and for
the run's own requester. Another organisation's request is a 404.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import services
from agents.models import ToolApproval, ToolApprovalStatus
from agents.privacy import may_see_identifiers, shown_data, shown_text
from prisma_glow.api.filters import FilterSet, IdFilter, IsoDateTimeFilter
from prisma_glow.api.pagination import StandardPagination
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.tenancy import get_access
from prisma_glow.api.viewsets import OrganizationScopedMixin
from tools.api.serializers import JSONObjectField


class ToolApprovalSerializer(serializers.ModelSerializer):
    """A tool call waiting for (or given) a person's decision. ``arguments``: as the model wrote them
    (the run's placeholders, e.g. ``[IBAN_1]``, stand for client identifiers); ``edited_arguments``:
    what the approver set instead (null: approved as asked)."""

    agent = serializers.IntegerField(source="execution.agent_id", read_only=True)
    agent_name = serializers.CharField(source="execution.agent.name", read_only=True)
    question = serializers.CharField(source="execution.input", read_only=True)
    execution_status = serializers.CharField(source="execution.status", read_only=True)
    decided_by_name = serializers.SerializerMethodField()

    class Meta:
        model = ToolApproval
        fields = [
            "id",
            "execution",
            "execution_status",
            "agent",
            "agent_name",
            "question",
            "tool",
            "tool_name",
            "call_id",
            "arguments",
            "edited_arguments",
            "status",
            "reason",
            "decided_by",
            "decided_by_name",
            "decided_at",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields

    def get_decided_by_name(self, obj: ToolApproval) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by_id else None

    def to_representation(self, instance: ToolApproval):
        data = super().to_representation(instance)
        request = self.context.get("request")
        execution = instance.execution
        visible = bool(
            request is not None
            and self.context.get("opened_alone")
            and may_see_identifiers(get_access(request), execution, opened_alone=True)
        )
        data["question"] = shown_text(execution, data["question"], visible=visible)
        data["reason"] = shown_text(execution, data["reason"], visible=visible)
        for name in ("arguments", "edited_arguments"):
            data[name] = shown_data(execution, data[name], visible=visible)
        return data


class ToolApprovalApproveSerializer(serializers.Serializer):
    """Approve the call as asked, or with ``arguments`` edited (a JSON object the tool's input schema
    accepts; the run's placeholders may be used as the model does)."""

    arguments = JSONObjectField(
        required=False,
        allow_null=True,
        help_text="The arguments to call the tool with instead of the model's; leave out to approve as asked.",
    )


class ToolApprovalRefuseSerializer(serializers.Serializer):
    """Refuse the call; the model reads "the person refused this call: <reason>" and the run goes on."""

    reason = serializers.CharField(max_length=2000, help_text="Why: the model reads it, the trace keeps it.")


class ToolApprovalFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ToolApprovalStatus.choices)
    agent = IdFilter(field_name="execution__agent_id")
    execution = IdFilter(field_name="execution_id")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ToolApproval
        fields = ["status", "agent", "execution", "created_after", "created_before"]


@extend_schema_view(
    list=extend_schema(
        summary="List tool calls awaiting (or given) approval",
        description="Newest first. `?status=pending` lists what waits for a decision (the approval "
        "inbox). Arguments are masked in the list (`DE89 •••• 3000`); open one for the exact values. "
        "Viewer role or `read` scope.",
    ),
    retrieve=extend_schema(
        summary="Retrieve a tool-call approval",
        description="The exact arguments, in full for an editor and for the run's own requester.",
    ),
)
class ToolApprovalViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Tool calls that wait for a person's approval (``agents.runtime.approvals``)."""

    queryset = ToolApproval.objects.select_related("execution__agent", "decided_by").order_by(
        "-created_at", "-id"
    )
    serializer_class = ToolApprovalSerializer
    parser_classes = [JSONParser]
    filterset_class = ToolApprovalFilterSet
    pagination_class = StandardPagination
    policy_resource = "tool_call"
    operations = {"approve": "tool_call.decide", "refuse": "tool_call.decide"}

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["opened_alone"] = self.action in ("retrieve", "approve", "refuse")
        return context

    def _answer(self, approval: ToolApproval) -> Response:
        approval = self.get_queryset().get(pk=approval.pk)
        return Response(ToolApprovalSerializer(approval, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Approve a tool call",
        description="Approves the paused call, as asked or with `arguments` edited (validated against "
        "the tool's input schema: 400 naming what is wrong). The run resumes in the background; follow "
        "it on its execution. 409 when the call was already decided or has expired (a late approval "
        "expires it and ends its run `failed`). Editors and above, signed in: API keys get 403 "
        "`session_required`.",
        request=ToolApprovalApproveSerializer,
        responses={
            200: ToolApprovalSerializer,
            400: OpenApiResponse(description="The arguments do not match the tool's input schema."),
            409: OpenApiResponse(description="Already decided, or expired."),
        },
        examples=[
            OpenApiExample("As asked", request_only=True, value={}),
            OpenApiExample(
                "Edited", request_only=True, value={"arguments": {"iban": "[IBAN_1]", "amount": "950.00"}}
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        approval = self.get_object()
        payload = ToolApprovalApproveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        approval = services.tool_approval_approve(
            approval=approval, actor=self.access.actor, arguments=payload.validated_data.get("arguments")
        )
        return self._answer(approval)

    @extend_schema(
        summary="Refuse a tool call",
        description="Refuses the paused call with a `reason`: the tool is not called, the model reads "
        '"the person refused this call: <reason>" as its result and the run goes on in the '
        "background. 409 when already decided or expired. Editors and above, signed in.",
        request=ToolApprovalRefuseSerializer,
        responses={
            200: ToolApprovalSerializer,
            409: OpenApiResponse(description="Already decided, or expired."),
        },
        examples=[OpenApiExample("Refusal", request_only=True, value={"reason": "Wrong client account."})],
    )
    @action(detail=True, methods=["post"])
    def refuse(self, request, pk=None):
        approval = self.get_object()
        payload = ToolApprovalRefuseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        approval = services.tool_approval_refuse(
            approval=approval, actor=self.access.actor, reason=payload.validated_data["reason"]
        )
        return self._answer(approval)
