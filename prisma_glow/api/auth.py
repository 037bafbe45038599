"""``POST /api/v1/auth/step-up/``: a signed-in person confirms a sensitive operation with a code.

A sensitive operation (``prisma_glow.policy.STEP_UP``) answers a session user 403
``step_up_required`` until a second factor was checked within ``PRISMA_GLOW_STEP_UP_MINUTES``; this
route checks one (``prisma_glow.factors.step_up``: the device's throttling, a code accepted once, a
new session key, audited) and says until when the session is fresh. API keys never step up (403
``session_required``: what needs a person is refused to keys outright).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from prisma_glow import factors, policy
from prisma_glow.api.permissions import account_security_url
from prisma_glow.tenancy.models import APIKey


class StepUpSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=64,
        trim_whitespace=True,
        help_text="The six digits your authenticator app shows now, or one of your backup codes "
        "(spaces and dashes are ignored).",
    )


class StepUpResultSerializer(serializers.Serializer):
    fresh_until = serializers.DateTimeField(
        help_text="Sensitive operations need no other code until then (ISO 8601, UTC)."
    )
    step_up_minutes = serializers.IntegerField(
        help_text="How long a check lasts (PRISMA_GLOW_STEP_UP_MINUTES)."
    )


WRONG_CODE = (
    "This code is wrong, expired or already used. Type the code your authenticator app shows now "
    "(or an unused backup code)."
)


class SignedInPerson(permissions.BasePermission):
    """A session user, whichever organisations they belong to (a superuser may belong to none): the
    check is the session's, not an organisation's. An API key is refused (``session_required``)."""

    message = "Only a signed-in person steps up; an API key never does (and never needs to)."
    code = policy.SESSION_REQUIRED

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, APIKey):
            return False
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        return True


class StepUpView(APIView):
    """Check a second-factor code for the signed-in session (the API's step-up)."""

    serializer_class = StepUpSerializer
    # Its own permission (no organisation needed); the operation names the route in the policy's doors.
    permission_classes = [SignedInPerson]
    operations = {"post": "factor.step_up"}

    @extend_schema(
        summary="Step up: confirm sensitive operations with a second-factor code",
        description="For a signed-in session (CSRF token required). A right code makes the session fresh "
        "for PRISMA_GLOW_STEP_UP_MINUTES (default 10): sensitive operations (activating or deprecating an "
        "agent, API keys, members and roles, a provider's secret, turning off or deleting a guardrail, "
        "deleting a knowledge base) then proceed instead of answering 403 `step_up_required`. The session "
        "gets a new key (its cookie is renewed). A wrong or used code answers 400 (`errors.code`); "
        "repeated wrong codes make the device wait (429, `Retry-After`). API keys get 403 "
        "`session_required`. Every attempt is audited.",
        request=StepUpSerializer,
        responses={200: StepUpResultSerializer},
        examples=[OpenApiExample("A code", value={"code": "123456"}, request_only=True)],
    )
    def post(self, request):
        payload = StepUpSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = factors.step_up(request, payload.validated_data["code"], door="api")
        if result.outcome == "no_factor":
            raise exceptions.ValidationError(
                {
                    "code": [
                        "You have no second factor to check: enrol an authenticator app under Account "
                        f"security in the admin ({account_security_url()}) first."
                    ]
                }
            )
        if result.outcome == "throttled":
            wait = max(1, math.ceil((result.retry_at - timezone.now()).total_seconds()))
            raise exceptions.Throttled(
                wait=wait, detail="Too many wrong codes: wait before trying again; nothing was checked."
            )
        if not result:
            raise exceptions.ValidationError({"code": [WRONG_CODE]})
        return Response(
            StepUpResultSerializer(
                {
                    "fresh_until": result.fresh_until,
                    "step_up_minutes": settings.PRISMA_GLOW_STEP_UP_MINUTES,
                }
            ).data
        )
