from rest_framework import serializers

from prisma_glow.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    """One audited action: who, what, on which object, before and after."""

    actor = serializers.CharField(source="actor_label", read_only=True)
    actor_type = serializers.SerializerMethodField(help_text="`user`, `api_key` or `system`.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "action",
            "actor",
            "actor_type",
            "actor_user",
            "actor_api_key",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "ip",
            "prev_hash",
            "hash",
            "hash_version",
        ]
        read_only_fields = fields

    def get_actor_type(self, obj: AuditEvent) -> str:
        # The label survives the deletion of the user or key, so it decides when the link is gone.
        if obj.actor_api_key_id is not None or obj.actor_label.startswith("API key"):
            return "api_key"
        if obj.actor_user_id is not None or obj.actor_label:
            return "user"
        return "system"
