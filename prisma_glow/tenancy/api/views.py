"""API keys, organisation members and the current organisation (``/api/v1/``)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from prisma_glow.api import permissions
from prisma_glow.api.tenancy import get_access
from prisma_glow.api.viewsets import OrganizationScopedMixin
from prisma_glow.tenancy import services
from prisma_glow.tenancy.api.serializers import (
    APIKeyCreatedSerializer,
    APIKeyCreateSerializer,
    APIKeyRotateSerializer,
    APIKeySerializer,
    InvitationCreateSerializer,
    InvitationSentSerializer,
    InvitationSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    OrganizationSerializer,
)
from prisma_glow.tenancy.models import APIKey, Invitation, Membership, Organization

# --- API keys ---------------------------------------------------------------------------------


def _created(api_key: APIKey, full_key: str) -> dict:
    data = APIKeyCreatedSerializer(api_key).data
    data["key"] = full_key
    return data


@extend_schema_view(
    list=extend_schema(
        summary="List the organisation's API keys", description="Newest first; never the secrets."
    ),
    retrieve=extend_schema(summary="Retrieve an API key"),
)
class APIKeyViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """API keys of the caller's organisation. A signed-in admin creates and rotates keys (never a key:
    403 ``session_required``); revoking also takes the admin scope. All three are sensitive: a person
    confirms them with a fresh second factor (403 ``step_up_required`` until then)."""

    queryset = APIKey.objects.select_related("created_by", "rotated_to").order_by("-created_at", "-id")
    serializer_class = APIKeySerializer
    filterset_fields = ["name"]
    search_fields = ["name", "prefix"]
    ordering_fields = ["created_at", "name", "last_used_at", "expires_at"]
    operations = {
        "list": "api_key.view",
        "retrieve": "api_key.view",
        "create": "api_key.create",
        "rotate": "api_key.rotate",
        "revoke": "api_key.revoke",
    }

    @extend_schema(
        summary="Create an API key",
        description="A signed-in admin only (an API key gets 403 `session_required`), with a fresh second "
        "factor (403 `step_up_required` until `POST /api/v1/auth/step-up/`). "
        "The response holds the full key in `key`; it is shown once and cannot be recovered. "
        "Every key expires: `expires_at` at most PRISMA_GLOW_API_KEY_MAX_DAYS (default 90) days away, that "
        "maximum when omitted; a later or past expiry answers 400.",
        request=APIKeyCreateSerializer,
        responses={201: APIKeyCreatedSerializer},
        examples=[
            OpenApiExample(
                "Client portal key",
                value={"name": "Client portal", "scopes": ["read", "execute"], "expires_at": None},
                request_only=True,
            )
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = APIKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, full_key = services.api_key_create(
            organization=self.organization,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        return Response(_created(api_key, full_key), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rotate an API key",
        description="A signed-in admin only (an API key gets 403 `session_required`), with a fresh second "
        "factor (403 `step_up_required`). "
        "Creates a new key with the same name and scopes and returns it (shown once). The new "
        "key starts a new lifetime: `expires_at`, or PRISMA_GLOW_API_KEY_MAX_DAYS (default 90) days when "
        "omitted. The old key keeps working for `grace_seconds` (default 0: it stops at once).",
        request=APIKeyRotateSerializer,
        responses={201: APIKeyCreatedSerializer},
        examples=[OpenApiExample("One hour of grace", value={"grace_seconds": 3600}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        api_key = self.get_object()
        serializer = APIKeyRotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new, full_key = services.api_key_rotate(
            api_key=api_key,
            actor=self.access.actor,
            grace=timedelta(seconds=serializer.validated_data["grace_seconds"]),
            expires_at=serializer.validated_data.get("expires_at"),
        )
        return Response(_created(new, full_key), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke an API key",
        description="The key stops working at once. Revoking a revoked key answers 409. The admin role or "
        "the `admin` scope; a signed-in person also a fresh second factor (403 `step_up_required`).",
        request=None,
        responses={200: APIKeySerializer},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=self.access.actor)
        return Response(APIKeySerializer(self.get_queryset().get(pk=api_key.pk)).data)


# --- Members ----------------------------------------------------------------------------------


ADD_BY_INVITATION = (
    "Members join by invitation: send the colleague's e-mail address as `email` (and a `role`); they "
    "become a member when they accept the e-mailed link. An existing account is never attached without "
    "its owner's consent (the site operator can, with `manage.py add_member`)."
)


@extend_schema_view(
    list=extend_schema(summary="List the organisation's members"),
    retrieve=extend_schema(summary="Retrieve a member"),
    create=extend_schema(
        summary="Add a member: invite a colleague",
        description="The same as `POST /api/v1/members/invite/`: e-mails a one-time link, and the colleague "
        "becomes a member with `role` only when they accept it (their consent). The answer (202) is the same "
        "whether or not an account uses the address, so it tells nobody which accounts exist. The old body "
        '`{"user": …}` answers 400 with a pointer to `email`: an existing account is never attached '
        "without its owner's consent (the site operator may, with `manage.py add_member`).",
        request=InvitationCreateSerializer,
        responses={202: InvitationSentSerializer},
        examples=[OpenApiExample("Invite an editor", value={"email": "mira@firm.example", "role": "editor"})],
    ),
    update=extend_schema(summary="Change a member's role", request=MembershipUpdateSerializer),
    partial_update=extend_schema(summary="Change a member's role", request=MembershipUpdateSerializer),
    destroy=extend_schema(
        summary="Remove a member", description="The organisation's last owner cannot be removed (409)."
    ),
)
class MembershipViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """Members of the caller's organisation. Viewers read; admins manage; owners alone touch owners.

    The last owner can be neither removed nor demoted (409).
    """

    queryset = Membership.objects.select_related("user").order_by("created_at", "id")
    serializer_class = MembershipSerializer
    filterset_fields = ["role"]
    search_fields = ["user__username", "user__email", "user__first_name", "user__last_name"]
    ordering_fields = ["created_at", "role", "user__username"]
    operations = {
        "list": "membership.view",
        "retrieve": "membership.view",
        "create": "membership.add",
        "update": "membership.change_role",
        "partial_update": "membership.change_role",
        "destroy": "membership.remove",
        "invite": "membership.add",
    }

    def create(self, request, *args, **kwargs):
        """Adding a member is inviting them (see ``invite``): attaching an existing account directly
        took it without its consent and told, by 201 or 404, which usernames exist."""
        data = request.data if isinstance(request.data, dict) else {}
        if "user" in data and "email" not in data:
            raise exceptions.ValidationError({"user": [ADD_BY_INVITATION]})
        return self.invite(request)

    @extend_schema(
        summary="Invite a colleague",
        description="E-mails a one-time link (valid PRISMA_GLOW_INVITATION_HOURS, default 48) that makes "
        "the colleague a member with `role` when they accept it: a new user sets a password there, an "
        "existing one signs in and accepts. The answer (202) is the same whether or not an account uses "
        "the address, and never carries the link except while the console e-mail backend is active "
        "(development). Inviting an address that has an open invitation replaces it (the earlier link "
        "stops working). Only an owner may invite an owner; a current member's address answers 409; an "
        "e-mail server that cannot be reached answers 503 `email_not_sent` and records nothing.",
        request=InvitationCreateSerializer,
        responses={202: InvitationSentSerializer},
        examples=[OpenApiExample("Invite an editor", value={"email": "mira@firm.example", "role": "editor"})],
    )
    @action(detail=False, methods=["post"])
    def invite(self, request):
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.require("membership.add", role=serializer.validated_data["role"])
        try:
            invitation, link = services.invitation_create(
                organization=self.organization,
                actor=self.access.actor,
                site_url=request.build_absolute_uri("/"),
                access=self.access,
                **serializer.validated_data,
            )
        except services.InvitationNotSent as exc:
            raise EmailNotSent(exc.messages[0]) from exc
        except DjangoPermissionDenied as exc:  # replacing an owner's open invitation: owners only
            raise exceptions.PermissionDenied(str(exc)) from exc
        return Response(invitation_sent(invitation, link), status=status.HTTP_202_ACCEPTED)

    def update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        role = serializer.validated_data.get("role", membership.role)
        self.require("membership.change_role", membership, role=role)
        membership = services.membership_update(
            membership=membership,
            actor=self.access.actor,
            role=role,
            access=self.access,
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        membership = self.get_object()  # the policy refuses an owner's membership to a non-owner
        services.membership_remove(membership=membership, actor=self.access.actor, access=self.access)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations ------------------------------------------------------------------------------


class EmailNotSent(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = services.INVITATION_NOT_SENT_MESSAGE
    default_code = "email_not_sent"


def invitation_sent(invitation: Invitation, link: str) -> dict:
    """The inviter's answer; the link only while e-mail is printed rather than sent."""
    data = {
        "id": invitation.pk,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at,
        "message": f"An invitation was sent to {invitation.email}. The link in it works once, until "
        f"{invitation.expires_at:%d %b %Y %H:%M} UTC.",
    }
    if services.console_email():
        data["link"] = link
    return InvitationSentSerializer(data).data


@extend_schema_view(
    list=extend_schema(
        summary="List the organisation's invitations",
        description="Newest first, with their state (pending, accepted, revoked, expired); never the links. "
        "Owners and admins (as for inviting).",
    ),
    retrieve=extend_schema(summary="Retrieve an invitation"),
)
class InvitationViewSet(
    OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Invitations of the caller's organisation (sent with ``POST /members/invite/``)."""

    queryset = Invitation.objects.select_related("invited_by", "accepted_by").order_by("-created_at", "-id")
    serializer_class = InvitationSerializer
    filterset_fields = ["role"]
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at", "email"]
    operations = {"list": "invitation.view", "retrieve": "invitation.view", "revoke": "membership.add"}

    @extend_schema(
        summary="Revoke an invitation",
        description="Its link stops working at once. Only an owner revokes an owner's invitation; an "
        "accepted or already revoked invitation answers 409.",
        request=None,
        responses={200: InvitationSerializer},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        invitation = services.invitation_revoke(
            invitation=self.get_object(), actor=self.access.actor, access=self.access
        )
        return Response(InvitationSerializer(self.get_queryset().get(pk=invitation.pk)).data)


# --- The organisation -------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        summary="The organisation the caller acts for", description="With the caller's role or scopes."
    ),
    put=extend_schema(
        summary="Update the organisation",
        description="Owners only, signed in: no API key may change the organisation.",
    ),
    patch=extend_schema(
        summary="Update the organisation",
        description="Owners only, signed in: no API key may change the organisation.",
    ),
)
class OrganizationView(mixins.RetrieveModelMixin, mixins.UpdateModelMixin, GenericAPIView):
    """The caller's organisation: anyone reads it; the owner renames it."""

    serializer_class = OrganizationSerializer
    operations = {
        "get": "organization.view",
        "put": "organization.update",
        "patch": "organization.update",
    }

    def get_queryset(self):
        return Organization.objects.filter(pk=get_access(self.request).organization.pk)

    def get_object(self):
        return self.get_queryset().get()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user and self.request.user.is_authenticated:
            context["access"] = get_access(self.request)
        return context

    def get(self, request, *args, **kwargs):
        return self.retrieve(request, *args, **kwargs)

    def put(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def patch(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def perform_update(self, serializer):
        access = get_access(self.request)
        # Turning one-person activation on or off is sensitive (a fresh second factor).
        permissions.require(
            self.request,
            "organization.update",
            serializer.instance,
            one_person_activation=serializer.validated_data.get("one_person_activation"),
        )
        serializer.instance = services.organization_update(
            organization=serializer.instance,
            actor=access.actor,
            **serializer.validated_data,
        )
