"""The audit log over the API: read-only, newest first, cursor-paginated."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.filters import OrderingFilter

from prisma_glow.api.pagination import IdCursorPagination
from prisma_glow.api.viewsets import OrganizationScopedReadOnlyViewSet
from prisma_glow.audit.api.filters import AuditEventFilterSet
from prisma_glow.audit.api.serializers import AuditEventSerializer
from prisma_glow.audit.models import AuditEvent


@extend_schema_view(
    list=extend_schema(
        summary="List audit events",
        description="Newest first, cursor-paginated (follow `next`). Filter by action, object, actor "
        "and date range (`at_after`, `at_before`).",
    ),
    retrieve=extend_schema(summary="Retrieve an audit event"),
)
class AuditEventViewSet(OrganizationScopedReadOnlyViewSet):
    """The organisation's audit log. Members need the admin role; keys the admin scope."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = IdCursorPagination
    filter_backends = [
        backend
        for backend in OrganizationScopedReadOnlyViewSet.filter_backends
        if backend is not OrderingFilter
    ]
    search_fields = ["object_repr", "actor_label", "action"]
    policy_resource = "audit"
