"""``/api/v1/tools/``: the organisation's HTTP tools and the built-in tools, plus a test runner."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from prisma_glow.api.errors import error_response
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.viewsets import OrganizationScopedViewSet
from tools import services
from tools.api.filtersets import ToolFilterSet
from tools.api.serializers import ToolResultSerializer, ToolSerializer, ToolTestSerializer
from tools.models import Tool
from tools.registry import ToolArgumentsInvalid, run_tool, validate_arguments

HTTP_TOOL_EXAMPLE = OpenApiExample(
    "Exchange-rate lookup",
    request_only=True,
    value={
        "name": "ECB exchange rate",
        "description": "Returns the ECB reference rate for a currency on a date.",
        "url_template": "https://rates.example.com/ecb/{currency}",
        "http_method": "GET",
        "input_schema": {
            "type": "object",
            "properties": {"currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "required": ["currency"],
        },
        "secret_headers": {"Authorization": "Bearer YOUR-RATES-API-TOKEN"},
    },
)


@extend_schema_view(
    list=extend_schema(
        summary="List tools",
        description="The organisation's HTTP tools and the built-in tools every organisation has "
        "(`is_builtin: true`, read-only).",
    ),
    retrieve=extend_schema(summary="Retrieve a tool"),
    create=extend_schema(
        summary="Create an HTTP tool",
        description="The input schema must be a valid JSON Schema for an object.",
        examples=[HTTP_TOOL_EXAMPLE],
    ),
    update=extend_schema(summary="Replace a tool", description="Built-in tools are read-only (403)."),
    partial_update=extend_schema(summary="Update a tool", description="Built-in tools are read-only (403)."),
    destroy=extend_schema(
        summary="Delete a tool",
        description="A tool assigned to an agent cannot be deleted (409); built-in tools are read-only (403).",
    ),
)
class ToolViewSet(OrganizationScopedViewSet):
    """Tools the organisation's agents can call."""

    queryset = Tool.objects.all()
    serializer_class = ToolSerializer
    parser_classes = [JSONParser]
    filterset_class = ToolFilterSet
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "slug", "created_at", "updated_at"]
    ordering = ["name", "id"]
    policy_resource = "tool"
    operations = {"test": "tool.test"}

    def perform_create(self, serializer):
        serializer.instance = services.tool_create(
            organization=self.organization,
            actor=self.access.actor,
            **serializer.validated_data,
        )

    def perform_update(self, serializer):
        serializer.instance = services.tool_update(
            tool=serializer.instance,
            actor=self.access.actor,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.tool_delete(tool=instance, actor=self.access.actor)

    @extend_schema(
        summary="Test a tool",
        description="Validates `arguments` against the tool's input schema (400 with one message per "
        "problem) and runs the tool once; a tool that fails answers 200 with `ok: false` and the reason. "
        "Needs the editor role or the `execute` scope.",
        request=ToolTestSerializer,
        responses={200: ToolResultSerializer},
        examples=[
            OpenApiExample(
                "US dollar rate",
                request_only=True,
                value={"arguments": {"currency": "USD"}},
            ),
            OpenApiExample(
                "The rate",
                response_only=True,
                value={
                    "ok": True,
                    "output": {"currency": "USD", "rate": "1.0842", "date": "2026-12-04"},
                    "error": "",
                    "duration_ms": 212.4,
                    "details": {
                        "http": {
                            "method": "GET",
                            "url": "https://rates.example.com/ecb/USD",
                            "status_code": 200,
                            "headers": ["Authorization"],
                            "redirects": [],
                            "response_bytes": 58,
                        }
                    },
                },
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        tool = self.get_object()
        serializer = ToolTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        arguments = serializer.validated_data["arguments"]
        try:
            validate_arguments(tool, arguments)
        except ToolArgumentsInvalid as exc:
            return error_response(
                status.HTTP_400_BAD_REQUEST,
                "invalid",
                "The arguments do not match the tool's input schema: " + "; ".join(exc.messages),
                {"arguments": exc.messages},
            )
        result = run_tool(tool, arguments)
        return Response(ToolResultSerializer(result.to_dict()).data)
