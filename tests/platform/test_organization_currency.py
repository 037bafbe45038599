"""The organisation's currency (issue 18): EUR by default, changed by an owner in the admin or the API,
audited, refused when it is not one of the offered ISO codes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from prisma_glow.audit.models import AuditEvent
from prisma_glow.display import CURRENCIES
from prisma_glow.tenancy.models import Organization
from prisma_glow.tenancy.services import organization_create, organization_update
from tests.conftest import client_for
from tests.factories import AgentFactory, ExecutionFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db
URL = "/api/v1/organization/"


def test_an_organisation_counts_in_euro_unless_told_otherwise(owner):
    assert organization_create(name="New Firm", slug="new-firm").currency == "EUR"
    assert organization_create(name="UK Firm", slug="uk-firm", currency="GBP").currency == "GBP"
    assert Organization._meta.get_field("currency").default == "EUR"
    assert ("EUR", "Euro (EUR)") in CURRENCIES


def test_the_api_shows_and_changes_the_currency_audited(owner, viewer, org):
    assert client_for(viewer).get(URL).json()["currency"] == "EUR"
    assert_error(client_for(viewer).patch(URL, {"currency": "USD"}, format="json"), 403)
    response = client_for(owner).patch(URL, {"currency": "USD"}, format="json")
    assert response.status_code == 200 and response.json()["currency"] == "USD"
    org.refresh_from_db()
    assert org.currency == "USD"
    event = AuditEvent.objects.get(action="organization.update")
    assert (event.before["currency"], event.after["currency"]) == ("EUR", "USD")


@pytest.mark.parametrize("value", ["XXX", "eur", "", "€", 12, None])
def test_the_api_refuses_a_currency_it_does_not_offer(owner, org, value):
    body = assert_error(
        client_for(owner).patch(URL, {"currency": value}, format="json"), 400, fields=["currency"]
    )
    assert body["code"]
    org.refresh_from_db()
    assert org.currency == "EUR"


def test_an_owner_changes_it_where_the_organisation_is_edited(owner_client, org):
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    page = owner_client.get(url).content.decode()
    assert 'name="currency"' in page and "Pound sterling (GBP)" in page
    response = owner_client.post(url, {"name": "Demo Firm", "slug": "demo-firm", "currency": "GBP"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.currency == "GBP"
    event = AuditEvent.objects.get(action="organization.update")
    assert (event.before["currency"], event.after["currency"]) == ("EUR", "GBP")
    refused = owner_client.post(url, {"name": "Demo Firm", "slug": "demo-firm", "currency": "ZZZ"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()


def test_a_viewer_cannot_change_it_in_the_admin(viewer_admin_client, org):
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    response = viewer_admin_client.post(url, {"name": "Demo Firm", "slug": "demo-firm", "currency": "USD"})
    assert response.status_code in (302, 403)
    org.refresh_from_db()
    assert org.currency == "EUR"


def test_the_evidence_page_shows_the_cost_in_the_organisations_currency(org, editor, owner):
    """The printable pack, from the API (no staff page context) and from the staff UI alike."""
    organization_update(organization=org, actor=owner, currency="CHF")
    run = ExecutionFactory(
        agent=AgentFactory(organization=org), cost=Decimal("0.0042"), latency_ms=30061, actor_user=editor
    )
    api = client_for(editor).get(reverse("execution-evidence", args=[run.pk]) + "?format=html")
    staff = login(editor).get(reverse("admin:agents_execution_evidence", args=[run.pk]) + "?format=html")
    for response in (api, staff):
        html = response.content.decode()
        assert response.status_code == 200 and "CHF 0.0042" in html and "30.1 s" in html
