"""Serializers of the evaluations API. Checks are validated by the service (``evaluations.checks``),
so the API, the admin and imports refuse the same definitions with the same messages."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.api.serializers import OrganizationRelatedField
from agents.models import Agent
from evaluations.models import Case, CaseResult, EvalRun, Requirement, Suite
from prisma_glow.api.fields import JSONValueField

CHECKS_HELP = (
    'A list of checks, e.g. [{"kind": "contains", "text": "reverse charge"}, {"kind": "cites_at_least", '
    '"count": 1}]; the kinds and their settings are in docs/api.md "Evaluation checks".'
)


class SuiteSerializer(serializers.ModelSerializer):
    """A suite of test cases for one agent (fixed once created)."""

    agent = OrganizationRelatedField(queryset=Agent.objects.all())
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Suite
        fields = ["id", "agent", "name", "description", "case_count", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # No DRF unique-together check (it answers on non_field_errors): the service's full_clean
        # answers a taken name with a 409 on ``name``, as every resource does (prisma_glow.uniqueness).
        validators = []

    def validate_agent(self, agent):
        if self.instance is not None and agent.pk != self.instance.agent_id:
            raise serializers.ValidationError("A suite cannot move to another agent: create a new suite.")
        return agent


class CaseSerializer(serializers.ModelSerializer):
    """A case: the input put to the agent and the checks its answer must pass."""

    checks = JSONValueField(required=False, help_text=CHECKS_HELP)

    class Meta:
        model = Case
        fields = [
            "id",
            "suite",
            "name",
            "input",
            "as_of",
            "must_pass",
            "expected_output",
            "checks",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["suite", "created_at", "updated_at"]
        extra_kwargs = {"input": {"max_length": 100000}, "expected_output": {"max_length": 100000}}


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv file with a header line, or a .jsonl file.")


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    cases = CaseSerializer(many=True)


class SaveAsCaseSerializer(serializers.Serializer):
    suite = OrganizationRelatedField(
        queryset=Suite.objects.all(), help_text="A suite of the execution's agent."
    )
    name = serializers.CharField(required=False, max_length=200, allow_blank=False)
    must_pass = serializers.BooleanField(required=False, default=False)


class RunCreateSerializer(serializers.Serializer):
    suite = OrganizationRelatedField(queryset=Suite.objects.select_related("agent", "organization"))
    release = serializers.IntegerField(
        required=False, min_value=1, help_text="The release's number (default: the agent's newest release)."
    )


class RunSerializer(serializers.ModelSerializer):
    """A run of a suite against one release; ``progress`` is ``done`` of ``total`` cases."""

    agent = serializers.IntegerField(source="suite.agent_id", read_only=True)
    release = serializers.IntegerField(source="release.number", read_only=True)
    release_hash = serializers.CharField(source="release.content_hash", read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = EvalRun
        fields = [
            "id",
            "suite",
            "agent",
            "release",
            "release_hash",
            "status",
            "error",
            "progress",
            "threshold",
            "passed_count",
            "pass_rate",
            "must_pass_failures",
            "cost",
            "latency_p50_ms",
            "latency_p95_ms",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
            "example": {"done": 12, "total": 40},
        }
    )
    def get_progress(self, run) -> dict:
        return {"done": run.done, "total": run.total}


class CheckVerdictSerializer(serializers.Serializer):
    kind = serializers.CharField()
    passed = serializers.BooleanField()
    reason = serializers.CharField()


class CaseResultSerializer(serializers.ModelSerializer):
    """One case of a run: its execution (source ``eval``), the outcome and each check's verdict."""

    verdicts = CheckVerdictSerializer(many=True, read_only=True)

    class Meta:
        model = CaseResult
        fields = ["id", "case", "case_name", "must_pass", "execution", "passed", "error", "verdicts"]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    results = CaseResultSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "results"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.OBJECT)
class ComparisonField(serializers.DictField):
    pass


class RequirementSerializer(serializers.ModelSerializer):
    """The suite an agent's releases must pass before going live, and the share of cases they must pass."""

    agent = OrganizationRelatedField(queryset=Agent.objects.all())
    suite = OrganizationRelatedField(queryset=Suite.objects.all())

    class Meta:
        model = Requirement
        fields = ["id", "agent", "suite", "threshold", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_agent(self, agent):
        if self.instance is not None and agent.pk != self.instance.agent_id:
            raise serializers.ValidationError("A requirement cannot move to another agent.")
        return agent
