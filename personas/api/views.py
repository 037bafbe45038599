"""``/api/v1/agents/{agent_pk}/personas/``: an agent's persona versions (+ activate, diff).

Versions are addressed by their number. The agent is looked up in the caller's organisation first,
so another organisation's agent answers 404 for every persona URL under it.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from personas import selectors, services
from personas.api.serializers import PersonaDiffSerializer, PersonaSerializer
from personas.models import Persona
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.viewsets import OrganizationScopedMixin

AGENT_PATH = OpenApiParameter(
    "agent_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The agent's id."
)
VERSION_PATH = OpenApiParameter(
    "version", OpenApiTypes.INT, OpenApiParameter.PATH, description="The version number."
)


@extend_schema(parameters=[AGENT_PATH])
@extend_schema_view(
    list=extend_schema(summary="List an agent's persona versions", description="Newest version first."),
    retrieve=extend_schema(summary="Retrieve a persona version", parameters=[VERSION_PATH]),
    create=extend_schema(
        summary="Create a persona version",
        description="Creates the agent's next version.",
        examples=[
            OpenApiExample(
                "Senior VAT specialist",
                request_only=True,
                value={
                    "name": "Senior VAT specialist",
                    "system_prompt": "You are a senior VAT specialist. Cite the firm's guidance; never give a "
                    "definitive opinion without review.",
                    "tone": "professional",
                    "temperature": "0.20",
                    "activate": True,
                },
            )
        ],
    ),
    update=extend_schema(
        summary="Replace a persona version",
        description="Edits the version in place while no execution has used it; a used version is immutable "
        "and the edit becomes the next version (returned; active if the edited one was).",
        parameters=[VERSION_PATH],
    ),
    partial_update=extend_schema(
        summary="Update a persona version",
        description="Edits the version in place while no execution has used it; a used version is immutable "
        "and the edit becomes the next version (returned; active if the edited one was).",
        parameters=[VERSION_PATH],
    ),
    destroy=extend_schema(
        summary="Delete a persona version",
        description="Only a version no execution has used, and not the active version of an active agent "
        "(409 otherwise).",
        parameters=[VERSION_PATH],
    ),
)
class PersonaViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """The versions of one agent's persona."""

    queryset = Persona.objects.all()
    serializer_class = PersonaSerializer
    parser_classes = [JSONParser]
    lookup_field = "version"
    lookup_value_regex = "[0-9]+"
    filterset_fields = ["is_active"]
    search_fields = ["name", "system_prompt"]
    ordering_fields = ["version", "created_at"]
    ordering = ["-version"]
    policy_resource = "persona"
    operations = {"activate": "persona.change", "diff": "persona.view"}

    @property
    def agent(self):
        if not hasattr(self, "_agent"):
            agent_model = Persona._meta.get_field("agent").related_model
            self._agent = get_object_or_404(
                agent_model.objects.filter(organization=self.organization).select_related("organization"),
                pk=self.kwargs["agent_pk"],
            )
        return self._agent

    def get_queryset(self):
        # ``is_used``: the one rule of personas.selectors (runs or a release hold the version).
        return selectors.with_usage(super().get_queryset().filter(agent=self.agent))

    def _fresh(self, persona: Persona) -> Persona:
        return self.get_queryset().get(pk=persona.pk)

    def perform_create(self, serializer):
        persona = services.persona_create(
            agent=self.agent,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        serializer.instance = self._fresh(persona)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("activate", None)
        persona = services.persona_update(persona=serializer.instance, actor=self.access.actor, **data)
        serializer.instance = self._fresh(persona)

    def perform_destroy(self, instance):
        services.persona_delete(persona=instance, actor=self.access.actor)

    @extend_schema(
        summary="Activate a persona version",
        description="Makes this version the one the agent runs with; the previously active version is "
        "deactivated in the same transaction. Audited.",
        parameters=[VERSION_PATH],
        request=None,
        responses={200: PersonaSerializer},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, agent_pk=None, version=None):
        persona = services.persona_activate(persona=self.get_object(), actor=self.access.actor)
        return Response(self.get_serializer(self._fresh(persona)).data)

    @extend_schema(
        summary="Compare two persona versions",
        description="Field by field, from the `against` version (default: the previous one) to this one; "
        "each changed field comes with a unified diff.",
        parameters=[
            VERSION_PATH,
            OpenApiParameter(
                "against",
                {"type": "integer", "minimum": 1, "maximum": 2_147_483_647},
                description="The version to compare with (default: the previous one).",
            ),
        ],
        responses={200: PersonaDiffSerializer},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, agent_pk=None, version=None):
        persona = self.get_object()
        against = request.query_params.get("against")
        others = Persona.objects.filter(agent=self.agent)
        if against in (None, ""):
            other = others.filter(version__lt=persona.version).order_by("-version").first() or persona
        else:
            field = serializers.IntegerField(min_value=1, max_value=2_147_483_647)
            try:
                number = field.run_validation(against)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"against": exc.detail})
            other = others.filter(version=number).first()
            if other is None:
                # An unknown version is a missing object (404 naming the parameter), not bad input.
                missing = ErrorDetail(f"This agent has no persona version {number}.", code="does_not_exist")
                raise serializers.ValidationError({"against": [missing]})
        return Response(PersonaDiffSerializer(services.persona_diff(persona=persona, other=other)).data)


__all__ = ["PersonaViewSet"]
