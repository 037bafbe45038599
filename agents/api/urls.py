"""Routes of the agents API, registered on the one router of ``prisma_glow.api.urls``."""

from agents.api.activation import ActivationRequestViewSet, AgentActivationRequestViewSet
from agents.api.approvals import ToolApprovalViewSet
from agents.api.releases import ReleaseViewSet
from agents.api.views import (
    AgentGuardrailViewSet,
    AgentKnowledgeViewSet,
    AgentToolViewSet,
    AgentViewSet,
    BudgetViewSet,
    ConversationViewSet,
    ExecutionViewSet,
    LearningExampleViewSet,
    ModelProviderViewSet,
)
from personas.api.views import PersonaViewSet

AGENT = r"agents/(?P<agent_pk>[0-9]+)"


def register(router) -> None:
    """Agents and what hangs off them: personas and assignments nested under ``/agents/{agent_pk}/``."""
    router.register("agents", AgentViewSet, basename="agent")
    router.register(f"{AGENT}/personas", PersonaViewSet, basename="agent-persona")
    router.register(f"{AGENT}/tools", AgentToolViewSet, basename="agent-tool")
    router.register(f"{AGENT}/knowledge", AgentKnowledgeViewSet, basename="agent-knowledge")
    router.register(f"{AGENT}/guardrails", AgentGuardrailViewSet, basename="agent-guardrail")
    router.register(f"{AGENT}/releases", ReleaseViewSet, basename="agent-release")
    router.register(
        f"{AGENT}/activation-requests", AgentActivationRequestViewSet, basename="agent-activation-request"
    )
    router.register("activation-requests", ActivationRequestViewSet, basename="activation-request")
    router.register("executions", ExecutionViewSet, basename="execution")
    router.register("conversations", ConversationViewSet, basename="conversation")
    router.register("learning-examples", LearningExampleViewSet, basename="learning-example")
    router.register("model-providers", ModelProviderViewSet, basename="model-provider")
    router.register("budgets", BudgetViewSet, basename="budget")
    router.register("tool-approvals", ToolApprovalViewSet, basename="tool-approval")
