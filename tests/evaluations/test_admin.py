"""The staff lists and pages: suites with their cases, runs with progress and results, requirements;
scoped to the organisation, read by viewers, who write nothing (the writes: test_admin_writes.py)."""

from __future__ import annotations

from evaluations import services
from evaluations.models import Requirement
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login


def test_the_pages_show_suites_runs_and_requirements(viewer_admin_client, suite, cases, vat_agent):
    run = services.run_create(suite=suite, actor=None)
    requirement = Requirement.objects.create(organization=suite.organization, agent=vat_agent, suite=suite)
    client = viewer_admin_client
    suites = client.get("/admin/evaluations/suite/").content.decode()
    assert "VAT regression" in suites
    page = client.get(f"/admin/evaluations/suite/{suite.pk}/change/").content.decode()
    assert "Reverse charge" in page and "customer accounts for the VAT" in page
    runs = client.get("/admin/evaluations/evalrun/").content.decode()
    assert "4 / 4" in runs and "Failed" in runs
    detail = client.get(f"/admin/evaluations/evalrun/{run.pk}/change/").content.decode()
    assert "Impossible" in detail and "canteen" in detail  # its result and the failed check's reason
    # A requirement's row leads to the required suite's page, where it is changed.
    response = client.get(f"/admin/evaluations/requirement/{requirement.pk}/change/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/evaluations/suite/{suite.pk}/change/#requirement"
    for url in ("/admin/evaluations/suite/add/", f"/admin/evaluations/evalrun/{run.pk}/delete/"):
        assert client.get(url).status_code == 403, url


def test_another_organisations_run_is_a_404(suite, cases, other_org):
    run = services.run_create(suite=suite, actor=None)
    stranger = UserFactory(username="stranger-admin", is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    client = login(stranger)
    assert client.get(f"/admin/evaluations/evalrun/{run.pk}/change/").status_code == 404
    assert client.get(f"/admin/evaluations/suite/{suite.pk}/change/").status_code == 404
    assert "VAT regression" not in client.get("/admin/evaluations/suite/").content.decode()
