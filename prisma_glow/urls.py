from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from prisma_glow.health import healthz, readyz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("prisma_glow.api.urls")),
]

# No route serves MEDIA_ROOT, in development either: stored documents are read by the ingestion only,
# never served (docs/security.md, V5.3.1).
