"""Serializers of the guardrails API. The configuration is validated per kind by the model's
``clean()`` (``guardrails.checks.validate_config``), through ``guardrails.services``."""

from __future__ import annotations

from rest_framework import serializers

from guardrails.models import Guardrail, GuardrailAction, Stage
from prisma_glow.api.fields import check_json_value

MAX_CHECK_CHARS = 200_000


class GuardrailSerializer(serializers.ModelSerializer):
    """A guardrail. Left out on create, ``action`` defaults to the kind's usual one and the stages to
    the kind's usual ones."""

    action = serializers.ChoiceField(choices=GuardrailAction.choices, required=False)
    applies_to_input = serializers.BooleanField(required=False, allow_null=True, default=None)
    applies_to_retrieval = serializers.BooleanField(required=False, allow_null=True, default=None)
    applies_to_output = serializers.BooleanField(required=False, allow_null=True, default=None)
    config = serializers.DictField(required=False, help_text="Settings for the kind (validated per kind).")

    class Meta:
        model = Guardrail
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "action",
            "applies_to_input",
            "applies_to_retrieval",
            "applies_to_output",
            "config",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The configuration must be a JSON object.")
        return check_json_value(value)

    def validate(self, attrs):
        if self.instance is not None:
            # On update, a stage left out (None) keeps its value.
            for stage in ("applies_to_input", "applies_to_retrieval", "applies_to_output"):
                if attrs.get(stage, False) is None:
                    attrs.pop(stage)
        return attrs


class GuardrailCheckSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=MAX_CHECK_CHARS, trim_whitespace=False, allow_blank=True)
    stage = serializers.ChoiceField(choices=Stage.choices, default=Stage.INPUT)


class CheckResultSerializer(serializers.Serializer):
    guardrail_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    kind = serializers.CharField()
    action = serializers.CharField()
    status = serializers.CharField(help_text="passed, triggered, skipped or error.")
    triggered = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    spans = serializers.ListField(child=serializers.ListField(), help_text="[start, end, label] in the text.")
    signals = serializers.ListField(child=serializers.DictField())
    duration_ms = serializers.FloatField()
    details = serializers.DictField()


class VerdictSerializer(serializers.Serializer):
    stage = serializers.CharField()
    blocked = serializers.BooleanField()
    blocked_by = CheckResultSerializer(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    text = serializers.CharField(
        allow_null=True, help_text="The text after redaction and notices (null when blocked)."
    )
    results = CheckResultSerializer(many=True)
    redactions = serializers.ListField(
        child=serializers.CharField(), help_text="Placeholders (never the originals)."
    )
    new_redactions = serializers.ListField(child=serializers.CharField())
    duration_ms = serializers.FloatField()
