"""Serializers, filters and schema examples of the activation-request API (``agents.api.activation``)."""

from __future__ import annotations

import django_filters
from rest_framework import serializers

from agents.models import ActivationRequest, ActivationRequestStatus
from prisma_glow.api.filters import FilterSet, IdFilter


class ActivationRequestSerializer(serializers.ModelSerializer):
    """A request to put a release live, and its decision."""

    release = serializers.IntegerField(
        source="release.number", read_only=True, help_text="The release number."
    )
    release_hash = serializers.CharField(
        source="release.content_hash", read_only=True, help_text="The release's content hash (SHA-256)."
    )
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    requested_by = serializers.CharField(
        source="requester_label", read_only=True, help_text="The user's name, or 'API key <name> (<prefix>)'."
    )
    decided_by = serializers.CharField(source="decider_label", read_only=True)
    verdict = serializers.JSONField(
        read_only=True,
        help_text="When approved: what the activation gates reported (`passed`, `gates`: each gate's "
        "evidence such as the evaluation run that passed, `self_approved`).",
    )

    class Meta:
        model = ActivationRequest
        fields = [
            "id",
            "agent",
            "agent_name",
            "release",
            "release_hash",
            "status",
            "requested_by",
            "requested_at",
            "notes",
            "decided_by",
            "decided_at",
            "reason",
            "verdict",
        ]
        read_only_fields = fields


class ActivationRequestCreateSerializer(serializers.Serializer):
    release = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="The release number to activate."
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, max_length=5000, help_text="Why (shown to the approver)."
    )


class ActivationRefuseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, help_text="Why the activation is refused (required).")


class ActivationCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ActivationRequestFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ActivationRequestStatus.choices)
    agent = IdFilter(field_name="agent_id")

    class Meta:
        model = ActivationRequest
        fields = ["status", "agent"]


def activation_requests():
    """The rows every activation-request endpoint serializes, with what it shows loaded."""
    return ActivationRequest.objects.select_related("agent", "release", "organization")


PENDING_EXAMPLE = {
    "id": 12,
    "agent": 3,
    "agent_name": "VAT adviser",
    "release": 4,
    "release_hash": "9f2c1e0b7a4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a49",
    "status": "pending",
    "requested_by": "m.jansen",
    "requested_at": "2026-11-30T09:12:44Z",
    "notes": "Adds the 2026 reverse-charge rules; suite 'VAT basics' run 41 passed 19/20.",
    "decided_by": "",
    "decided_at": None,
    "reason": "",
    "verdict": {},
}
APPROVED_EXAMPLE = {
    **PENDING_EXAMPLE,
    "status": "approved",
    "decided_by": "a.devries",
    "decided_at": "2026-11-30T10:02:10Z",
    "verdict": {
        "passed": True,
        "gates": {"evaluations": {"run": 41, "suite": "VAT basics", "pass_rate": 0.95}},
        "failures": [],
        "self_approved": False,
    },
}
