"""Serializers of the personas API (nested under an agent)."""

from __future__ import annotations

from rest_framework import serializers

from personas.models import Persona


class PersonaSerializer(serializers.ModelSerializer):
    """One version of an agent's persona. ``is_used``: an execution ran with it or a release holds it,
    so an edit creates the next version instead of changing it."""

    is_used = serializers.BooleanField(read_only=True, default=False)
    activate = serializers.BooleanField(
        write_only=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="On create: true makes the new version active, false leaves it inactive; left out, it "
        "becomes active only when the agent has no active version yet.",
    )

    class Meta:
        model = Persona
        fields = [
            "id",
            "agent",
            "version",
            "name",
            "system_prompt",
            "tone",
            "audience",
            "language",
            "temperature",
            "max_tokens",
            "model_override",
            "is_active",
            "is_used",
            "activate",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["agent", "version", "is_active", "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "system_prompt": {"max_length": 100_000},
            "max_tokens": {
                "help_text": "Longest answer the model may give, in tokens (1 to 128000). Null: the "
                "server's default, 1024 unless PRISMA_GLOW_DEFAULT_MAX_TOKENS says otherwise; it is sent "
                "to the provider with every request."
            },
        }


class PersonaChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.CharField(allow_blank=True)
    after = serializers.CharField(allow_blank=True)
    diff = serializers.CharField(allow_blank=True, help_text="A unified diff, line by line.")


class PersonaDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = PersonaChangeSerializer(many=True)
