"""``/api/v1/``: every app registers its viewsets on the one router here."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from agents.api import urls as agents_api
from evaluations.api import urls as evaluations_api
from guardrails.api import urls as guardrails_api
from knowledge.api import urls as knowledge_api
from prisma_glow.api.auth import StepUpView
from prisma_glow.audit.api.views import AuditEventViewSet
from prisma_glow.tenancy.api.views import (
    APIKeyViewSet,
    InvitationViewSet,
    MembershipViewSet,
    OrganizationView,
)
from tools.api import urls as tools_api

router = DefaultRouter()

# --- Platform -----------------------------------------------------------------------------------
router.register("api-keys", APIKeyViewSet, basename="api-key")
router.register("members", MembershipViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

# --- Domain resources (one line each) -----------------------------------------------------------
agents_api.register(router)  # agents, personas, assignments, executions, providers, learning
tools_api.register(router)
guardrails_api.register(router)
knowledge_api.register(router)  # knowledge bases, documents, chunks, search
evaluations_api.register(router)  # suites, cases, runs, requirements, save-as-case

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="prisma_glow_api/swagger_ui.html"
        ),
        name="swagger-ui",
    ),
    path("organization/", OrganizationView.as_view(), name="organization"),
    path("auth/step-up/", StepUpView.as_view(), name="auth-step-up"),
    *router.urls,
]
