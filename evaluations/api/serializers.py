"""Serializers of the evaluations API. Checks are validated by the service (``evaluations.checks``),
so the API, the admin and imports refuse the same definitions with the same messages."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.api.serializers import OrganizationRelatedField
from agents.models import Agent, ModelProvider
from agents.privacy import sees_every_identifier
from evaluations.models import Case, CaseResult, EvalRun, Requirement, Suite
from evaluations.services import CASE_TEXTS
from guardrails.masking import mask_data, mask_text
from prisma_glow.api.fields import JSONListOfObjectsField
from prisma_glow.api.tenancy import get_access

CHECKS_HELP = (
    'A list of checks, e.g. [{"kind": "contains", "text": "reverse charge"}, {"kind": "cites_at_least", '
    '"count": 1}]; the kinds and their settings are in docs/api.md "Evaluation checks".'
)


class SuiteSerializer(serializers.ModelSerializer):
    """A suite of test cases for one agent (fixed once created)."""

    agent = OrganizationRelatedField(queryset=Agent.objects.all())
    judge_provider = OrganizationRelatedField(
        queryset=ModelProvider.objects.all(),
        required=False,
        allow_null=True,
        help_text="The provider whose model grades rubric checks; null: the organisation's default.",
    )
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Suite
        fields = [
            "id",
            "agent",
            "name",
            "description",
            "judge_provider",
            "judge_model",
            "case_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # No DRF unique-together check (it answers on non_field_errors): the service's full_clean
        # answers a taken name with a 409 on ``name``, as every resource does (prisma_glow.uniqueness).
        validators = []

    def validate_agent(self, agent):
        if self.instance is not None and agent.pk != self.instance.agent_id:
            raise serializers.ValidationError("A suite cannot move to another agent: create a new suite.")
        return agent


class CaseSerializer(serializers.ModelSerializer):
    """A case: the input put to the agent and the checks its answer must pass. Its name, input and
    expected output may hold client identifiers: shown in full only on the case's own detail to an
    editor or above (``agents.privacy.sees_every_identifier``), masked in lists and for everyone else
    (API keys included)."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        visible = bool(
            request is not None
            and self.context.get("opened_alone")
            and sees_every_identifier(get_access(request))
        )
        if not visible:
            for name in CASE_TEXTS:
                if isinstance(data.get(name), str):
                    data[name] = mask_text(data[name])
            if "checks" in data:
                data["checks"] = mask_data(data["checks"])
        return data

    checks = JSONListOfObjectsField(required=False, help_text=CHECKS_HELP)

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
    passed = serializers.BooleanField(allow_null=True, help_text="null: a rubric the judge did not grade.")
    reason = serializers.CharField()
    judged = serializers.BooleanField(required=False, help_text="Rubric only: the judge gave a verdict.")
    reasoning = serializers.CharField(required=False, help_text="Rubric only: the judge's reasoning.")
    counts = serializers.BooleanField(
        required=False, help_text="Rubric only: the verdict decides the case (false: recorded only)."
    )


class CaseResultSerializer(serializers.ModelSerializer):
    """One case of a run: its execution (source ``eval``), the outcome and each check's verdict (the
    case's name and the verdicts' reasons with client identifiers masked: results are a list)."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["case_name"] = mask_text(data["case_name"])
        data["error"] = mask_text(data["error"]) if data.get("error") else data.get("error")
        for verdict in data.get("verdicts") or []:
            if isinstance(verdict, dict) and isinstance(verdict.get("reason"), str):
                verdict["reason"] = mask_text(verdict["reason"])
        return data

    verdicts = CheckVerdictSerializer(many=True, read_only=True)

    class Meta:
        model = CaseResult
        fields = [
            "id",
            "case",
            "case_name",
            "must_pass",
            "execution",
            "passed",
            "error",
            "verdicts",
            "human_passed",
            "marked_by",
            "marked_at",
        ]
        read_only_fields = fields


class MarkSerializer(serializers.Serializer):
    """A person's mark on a case of a run."""

    passed = serializers.BooleanField(
        allow_null=True, help_text="true: the answer is right; false: it is wrong; null: withdraw the mark."
    )


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
