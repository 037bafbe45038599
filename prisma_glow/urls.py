from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from prisma_glow.health import healthz, readyz
from prisma_glow.tenancy.views import invitation_accept_view

# A refusal under /admin/ is a page of the admin with the reason and a way back (prisma_glow.admin.refusal).
handler403 = "prisma_glow.admin.refusal.permission_denied"
handler400 = "prisma_glow.admin.refusal.bad_request"  # a form too large: said in the admin's layout

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("prisma_glow.api.urls")),
    # The one-time link of an e-mailed invitation (outside /admin/: the invitee may have no account).
    path("invitation/<str:token>/", invitation_accept_view, name="invitation-accept"),
]

# No route serves MEDIA_ROOT, in development either: stored documents are read by the ingestion only,
# never served (docs/security.md, V5.3.1).
