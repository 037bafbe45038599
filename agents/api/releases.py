"""``/api/v1/agents/{agent_pk}/releases/``: an agent's releases — list, create, detail, diff.

A release is an immutable snapshot of what decides a run (``agents.releases``); creating one is
``agents.services.release_create`` (audited, 409 when the agent has no active persona or nothing has
changed since an existing release). Reading needs ``release.view`` (viewers, the ``read`` scope),
creating ``release.add`` (editors, the ``write`` scope). The snapshot's learning examples are shown
as ``agents.release_diff.shown_snapshot`` rules (identifiers in full for editors and above on the
detail and the diff, masked for everyone else); a snapshot never holds a secret.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from agents import services
from agents.api.views import AGENT_PATH, AgentChildMixin
from agents.models import Release
from agents.privacy import sees_every_identifier
from agents.release_diff import release_diff, shown_snapshot
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.tenancy import get_access

NUMBER_PATH = OpenApiParameter(
    "number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The release number (1, 2, …)."
)
MAX_NOTES = 10_000
_HASH = "5f1c0b9e2d7a4c3e8b6f0a1d9c2e7b4a6d3f8e1c0b5a9d7e2f4c6b8a0e1d3c5f"


# --- Serializers ------------------------------------------------------------------------------


class ReleaseSerializer(serializers.ModelSerializer):
    """A release as listed: its number, hash, author, notes and whether it is the agent's active one."""

    hash = serializers.CharField(source="content_hash", read_only=True, help_text="SHA-256 of its content.")
    author = serializers.SerializerMethodField(
        help_text="Who created it (null: a migration, or a deleted user)."
    )
    persona_version = serializers.IntegerField(source="persona.version", read_only=True)
    is_active = serializers.SerializerMethodField(
        help_text="The agent's active release: what its API runs run while the agent is active."
    )

    class Meta:
        model = Release
        fields = ["number", "hash", "author", "notes", "created_at", "is_active", "persona_version"]
        read_only_fields = fields

    def get_author(self, obj: Release) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None

    def get_is_active(self, obj: Release) -> bool:
        agent = self.context.get("agent") or obj.agent
        return agent.active_release_id == obj.pk


class ReleaseDetailSerializer(ReleaseSerializer):
    """A release with its snapshot: persona, provider and model, assignments with their settings, tool
    definitions, guardrail configurations, examples (identifiers masked unless the caller is an editor
    or above)."""

    snapshot = serializers.SerializerMethodField(
        help_text="Everything that decides a run (format 1, docs/api.md). Never holds a secret."
    )

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "snapshot"]
        read_only_fields = fields

    def get_snapshot(self, obj: Release) -> dict:
        return shown_snapshot(obj, visible=self.context.get("identifiers_visible", False))


class ReleaseCreateSerializer(serializers.Serializer):
    """What a new release says about itself."""

    notes = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_NOTES,
        default="",
        help_text="Why this release: what changed, which ticket.",
    )


class ReleaseChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The field, as a dotted path (`settings.timeout`, `tool.url`).")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ReleaseValueChangeSerializer(serializers.Serializer):
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ReleaseChangedEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(required=False)
    changes = ReleaseChangeSerializer(many=True)


class ReleaseListChangesSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.DictField())
    removed = serializers.ListField(child=serializers.DictField())
    changed = ReleaseChangedEntrySerializer(many=True)


class ReleaseDiffSerializer(serializers.Serializer):
    """What changed from release ``from`` (``against``) to release ``to``, field by field."""

    to = serializers.IntegerField(help_text="This release's number.")
    to_hash = serializers.CharField()
    from_ = serializers.IntegerField(help_text="The release compared with (`against`).")
    from_hash = serializers.CharField()
    identical = serializers.BooleanField(help_text="True when nothing differs.")
    agent = ReleaseChangeSerializer(
        many=True, help_text="Run settings (name, max_tool_rounds, timeout_seconds)."
    )
    persona = ReleaseChangeSerializer(
        many=True, help_text="Each persona field that differs (version, prompt…)."
    )
    provider = ReleaseValueChangeSerializer(allow_null=True)
    model = ReleaseValueChangeSerializer(allow_null=True)
    tools = ReleaseListChangesSerializer()
    knowledge = ReleaseListChangesSerializer()
    guardrails = ReleaseListChangesSerializer()
    examples = ReleaseListChangesSerializer()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


# --- The viewset ------------------------------------------------------------------------------

_DETAIL_EXAMPLE = {
    "number": 3,
    "hash": _HASH,
    "author": "mira",
    "notes": "Cite the 2025 VAT manual; reverse-charge wording reviewed by A. Keller.",
    "created_at": "2026-11-30T09:12:44.120Z",
    "is_active": True,
    "persona_version": 4,
    "snapshot": {
        "format": 1,
        "agent": {"id": 12, "name": "VAT adviser", "max_tool_rounds": 4, "timeout_seconds": 120},
        "persona": {
            "id": 31,
            "version": 4,
            "name": "Senior VAT specialist",
            "system_prompt": "You are a senior VAT specialist. Cite the firm's guidance.",
            "tone": "professional",
            "audience": "Tax managers",
            "language": "en",
            "temperature": "0.20",
            "max_tokens": 1024,
            "model_override": "",
        },
        "provider": {
            "id": 2,
            "name": "Azure OpenAI (EU)",
            "kind": "openai_compatible",
            "base_url": "https://firm-eu.openai.azure.com/v1",
            "default_model": "gpt-4o-mini",
        },
        "model": "gpt-4o-mini",
        "tools": [
            {
                "order": 1,
                "settings": {"timeout": 10},
                "tool": {"id": 7, "name": "VIES VAT number check", "kind": "http", "method": "GET"},
            }
        ],
        "knowledge": [
            {"order": 1, "top_k": 5, "min_score": 0.2, "knowledge_base": {"id": 4, "name": "EU VAT guidance"}}
        ],
        "guardrails": [
            {"order": 1, "guardrail": {"id": 9, "name": "Client identifiers", "kind": "pii", "config": {}}}
        ],
        "examples": [
            {
                "id": 55,
                "input": "Which VAT applies to IBAN DE89 •••• 3000's invoice?",
                "output": "The reverse charge applies.",
            }
        ],
    },
}

_DIFF_EXAMPLE = {
    "to": 3,
    "to_hash": _HASH,
    "from": 2,
    "from_hash": "0e4b2f8a1c6d9e3b7a5f2c8d0b4e6a1f3c9d7b5e2a8f0c4d6b1e3a9f7c5d2b8e",
    "identical": False,
    "agent": [],
    "persona": [
        {"field": "version", "before": 3, "after": 4},
        {
            "field": "system_prompt",
            "before": "You are a VAT specialist.",
            "after": "You are a senior VAT specialist. Cite the firm's guidance.",
        },
    ],
    "provider": None,
    "model": {"before": "gpt-4o", "after": "gpt-4o-mini"},
    "tools": {
        "added": [],
        "removed": [],
        "changed": [
            {
                "id": 7,
                "name": "VIES VAT number check",
                "order": 1,
                "settings": {"timeout": 10},
                "changes": [{"field": "settings.timeout", "before": 30, "after": 10}],
            }
        ],
    },
    "knowledge": {
        "added": [{"id": 4, "name": "EU VAT guidance", "order": 1, "top_k": 5, "min_score": 0.2}],
        "removed": [],
        "changed": [],
    },
    "guardrails": {"added": [], "removed": [], "changed": []},
    "examples": {"added": [], "removed": [], "changed": []},
}


@extend_schema(parameters=[AGENT_PATH])
@extend_schema_view(
    list=extend_schema(
        summary="List an agent's releases",
        description="Newest first, page-numbered. `is_active` marks the release the agent's API runs run.",
    ),
    retrieve=extend_schema(
        summary="Retrieve a release with its snapshot",
        description="The snapshot holds the persona version, provider and model, the tool, knowledge and "
        "guardrail assignments with their settings, the tools' definitions and guardrails' configurations "
        "as they were, and the approved learning examples. Client identifiers in the examples are in full "
        "for members with the editor role or above, masked for everyone else (API keys included). "
        "Secrets are never part of a release.",
        parameters=[NUMBER_PATH],
        examples=[OpenApiExample("Release 3", response_only=True, value=_DETAIL_EXAMPLE)],
    ),
    create=extend_schema(
        summary="Create a release",
        description="Freezes the agent's current configuration (its draft: the active persona and the live "
        "assignments) as its next release. Nothing goes live until the release is activated "
        "(`POST /agents/{id}/activate/` with `release`). 409 when the agent has no active persona, or when "
        "its configuration is exactly an existing release's (the message names it). Needs the editor role "
        "or the `write` scope. Audited (`release.create`).",
        request=ReleaseCreateSerializer,
        responses={201: ReleaseDetailSerializer},
        examples=[
            OpenApiExample(
                "With notes",
                request_only=True,
                value={"notes": "Cite the 2025 VAT manual; reverse-charge wording reviewed by A. Keller."},
            )
        ],
    ),
    diff=extend_schema(
        summary="Compare two releases",
        description="Field by field, from the `against` release (default: the one before) to this one: the "
        "agent's run settings, each persona field, provider and model, tools / knowledge bases / guardrails "
        "added, removed or changed (with which settings, as dotted paths), and the learning examples "
        "(masked as on the detail). A malformed `against` is a 400, an unknown one a 404.",
        parameters=[
            NUMBER_PATH,
            OpenApiParameter(
                "against",
                {"type": "integer", "minimum": 1, "maximum": 2_147_483_647},
                description="The release number to compare with (default: the previous release).",
            ),
        ],
        responses={200: ReleaseDiffSerializer},
        examples=[OpenApiExample("2 → 3", response_only=True, value=_DIFF_EXAMPLE)],
    ),
)
class ReleaseViewSet(AgentChildMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The releases of one agent: read by every member, created by editors (or write keys)."""

    queryset = Release.objects.select_related("created_by", "persona").order_by("-number")
    serializer_class = ReleaseSerializer
    parser_classes = [JSONParser]
    lookup_field = "number"
    lookup_value_regex = "[0-9]+"
    filter_backends: list = []
    policy_resource = "release"
    operations = {"diff": "release.view"}

    def get_serializer_class(self):
        if self.action == "list":
            return ReleaseSerializer
        if self.action == "create":
            return ReleaseCreateSerializer
        return ReleaseDetailSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "agent_pk" in self.kwargs and getattr(self.request, "user", None) is not None:
            context["agent"] = self.agent
            # A release opened alone (its detail, the one just created, a diff): identifiers in full
            # for those who may see every identifier of the organisation (agents.privacy).
            context["identifiers_visible"] = (self.detail or self.action == "create") and (
                sees_every_identifier(get_access(self.request))
            )
        return context

    def create(self, request, *args, **kwargs):
        payload = ReleaseCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        release = services.release_create(
            agent=self.agent, actor=self.access.actor, notes=payload.validated_data["notes"]
        )
        release = self.get_queryset().get(pk=release.pk)
        data = ReleaseDetailSerializer(release, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def diff(self, request, agent_pk=None, number=None):
        release = self.get_object()
        against = request.query_params.get("against")
        others = self.get_queryset()
        if against in (None, ""):
            other = others.filter(number__lt=release.number).first()
            if other is None:
                # The release to compare with (the one before) is not there: 404, as for an unknown
                # ``against`` (a 400 told a fuzzer its well-formed request was malformed).
                first = ErrorDetail(
                    f"Release {release.number} is the agent's first: name a release to compare with.",
                    code="does_not_exist",
                )
                raise serializers.ValidationError({"against": [first]})
        else:
            field = serializers.IntegerField(min_value=1, max_value=2_147_483_647)
            try:
                number_against = field.run_validation(against)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"against": exc.detail})
            other = others.filter(number=number_against).first()
            if other is None:
                missing = ErrorDetail(f"This agent has no release {number_against}.", code="does_not_exist")
                raise serializers.ValidationError({"against": [missing]})
        visible = sees_every_identifier(get_access(request))
        changes = release_diff(
            shown_snapshot(other, visible=visible), shown_snapshot(release, visible=visible)
        )
        body = {
            "to": release.number,
            "to_hash": release.content_hash,
            "from": other.number,
            "from_hash": other.content_hash,
            **changes,
        }
        return Response(body)


__all__ = ["ReleaseViewSet"]
