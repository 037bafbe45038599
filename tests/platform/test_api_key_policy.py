"""The API key policy (issue 16): every key expires within PRISMA_GLOW_API_KEY_MAX_DAYS, at creation and
at rotation, through the service, the API, the admin and the command; every response to a key says
when it expires and warns near it; an expired key gets 401 ``api_key_expired``; last use is written
at most once a minute, by one conditional UPDATE."""

from __future__ import annotations

from datetime import UTC, timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from prisma_glow.api.authentication import EXPIRES_AT_HEADER, EXPIRY_WARNING_HEADER, record_use
from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import APIKey
from tests.conftest import client_for
from tests.factories import APIKeyFactory
from tests.support.api import assert_error

URL = "/api/v1/api-keys/"
DAY = timedelta(days=1)


def lifetime_left(key: APIKey) -> timedelta:
    return key.expires_at - timezone.now()


def admin_local(value) -> str:
    """A datetime as the admin's datetime-local input sends it."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


# --- The service ----------------------------------------------------------------------------------


def test_a_key_created_without_expiry_gets_the_longest_lifetime(org, settings):
    settings.API_KEY_MAX_DAYS = 30
    key, _ = services.api_key_create(organization=org, actor=None, name="Portal", scopes=["read"])
    assert 30 * DAY - timedelta(minutes=1) < lifetime_left(key) <= 30 * DAY


def test_an_expiry_beyond_the_maximum_or_in_the_past_is_refused_not_shortened(org, settings):
    settings.API_KEY_MAX_DAYS = 30
    for expires_at in (timezone.now() + 31 * DAY, timezone.now() - timedelta(seconds=1)):
        with pytest.raises(ValidationError) as caught:
            services.api_key_create(
                organization=org, actor=None, name="Portal", scopes=["read"], expires_at=expires_at
            )
        assert list(caught.value.message_dict) == ["expires_at"]
    assert "at most 30 days" in str(caught_beyond(org))
    assert not APIKey.objects.exists()
    within = timezone.now() + 29 * DAY
    key, _ = services.api_key_create(
        organization=org, actor=None, name="Portal", scopes=["read"], expires_at=within
    )
    assert key.expires_at == within


def caught_beyond(org):
    with pytest.raises(ValidationError) as caught:
        services.api_key_create(
            organization=org, actor=None, name="P", scopes=["read"], expires_at=timezone.now() + 365 * DAY
        )
    return caught.value


def test_rotation_caps_the_new_key_and_a_refusal_changes_nothing(org, owner, settings):
    settings.API_KEY_MAX_DAYS = 30
    old = APIKeyFactory(organization=org, expires_at=timezone.now() + 2 * DAY)
    expiry = old.expires_at
    with pytest.raises(ValidationError) as caught:
        services.api_key_rotate(api_key=old, actor=owner, expires_at=timezone.now() + 31 * DAY)
    assert list(caught.value.message_dict) == ["expires_at"]
    old.refresh_from_db()
    assert old.expires_at == expiry and not APIKey.objects.filter(rotated_from=old).exists()
    chosen = timezone.now() + 7 * DAY
    new, _ = services.api_key_rotate(api_key=old, actor=owner, expires_at=chosen)
    assert new.expires_at == chosen


# --- The API --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("not a date", "Datetime has wrong format"),
        ("2001-01-01T00:00:00Z", "The expiry must be in the future"),
        ("beyond", "A key can last at most 90 days"),
    ],
)
def test_api_create_refuses_a_bad_expiry_with_a_documented_400(admin_client_api, org, expires_at, message):
    if expires_at == "beyond":
        expires_at = (timezone.now() + 91 * DAY).isoformat()
    response = admin_client_api.post(
        URL, {"name": "Portal", "scopes": ["read"], "expires_at": expires_at}, format="json"
    )
    body = assert_error(response, 400, fields=["expires_at"])
    assert body["code"] == "invalid" and message in body["errors"]["expires_at"][0]
    assert not APIKey.objects.filter(organization=org).exists()


def test_api_create_without_expiry_answers_the_maximum(admin_client_api):
    response = admin_client_api.post(URL, {"name": "Portal", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.json()
    key = APIKey.objects.get(pk=response.json()["id"])
    assert 90 * DAY - timedelta(minutes=1) < lifetime_left(key) <= 90 * DAY
    assert response.json()["expires_soon"] is False


def test_api_rotate_gives_a_new_lifetime_and_refuses_a_bad_expiry(admin_client_api, org):
    old = APIKeyFactory(organization=org, expires_at=timezone.now() + 3 * DAY)
    for bad in ("tomorrow", (timezone.now() + 100 * DAY).isoformat()):
        assert_error(
            admin_client_api.post(f"{URL}{old.pk}/rotate/", {"expires_at": bad}, format="json"),
            400,
            fields=["expires_at"],
        )
    assert not APIKey.objects.filter(rotated_from=old).exists()
    response = admin_client_api.post(f"{URL}{old.pk}/rotate/", {}, format="json")
    assert response.status_code == 201
    new = APIKey.objects.get(pk=response.json()["id"])
    assert lifetime_left(new) > 89 * DAY


def test_near_expiry_is_flagged_in_the_api(admin_client_api, org):
    soon = APIKeyFactory(organization=org, expires_at=timezone.now() + 5 * DAY)
    later = APIKeyFactory(organization=org, expires_at=timezone.now() + 30 * DAY)
    flags = {row["id"]: row["expires_soon"] for row in admin_client_api.get(URL).json()["results"]}
    assert flags == {soon.pk: True, later.pk: False}


# --- Headers on every response to a key ------------------------------------------------------------


def test_every_response_to_a_key_says_when_it_expires_errors_included(org):
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = client_for(key=key.plaintext)
    expected = key.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    responses = {
        "ok": client.get("/api/v1/organization/"),
        "404": client.get("/api/v1/agents/999999/"),
        "403": client.post(URL, {"name": "x", "scopes": ["read"]}, format="json"),
        "400": client.get("/api/v1/agents/?status=bogus"),
        "405": client.delete("/api/v1/organization/"),
    }
    assert {name: r.status_code for name, r in responses.items()} == {
        "ok": 200,
        "404": 404,
        "403": 403,
        "400": 400,
        "405": 405,
    }
    for name, response in responses.items():
        assert response[EXPIRES_AT_HEADER] == expected, name
        assert EXPIRY_WARNING_HEADER not in response, name


def test_a_key_near_expiry_gets_a_warning_on_every_response(org, settings):
    key = APIKeyFactory(
        organization=org, scopes=["read"], expires_at=timezone.now() + 5 * DAY + timedelta(hours=1)
    )
    client = client_for(key=key.plaintext)
    for response in (client.get("/api/v1/organization/"), client.get("/api/v1/agents/999999/")):
        warning = response[EXPIRY_WARNING_HEADER]
        assert "in 5 days" in warning and f"/api/v1/api-keys/{key.pk}/rotate/" in warning
    settings.API_KEY_WARN_DAYS = 3
    assert EXPIRY_WARNING_HEADER not in client.get("/api/v1/organization/")


def test_a_session_or_an_anonymous_caller_gets_no_key_headers(admin_client_api, api_client, org):
    for response in (admin_client_api.get("/api/v1/organization/"), api_client.get("/api/v1/organization/")):
        assert EXPIRES_AT_HEADER not in response and EXPIRY_WARNING_HEADER not in response


def test_an_expired_or_rotated_out_key_gets_401_api_key_expired(org, owner):
    expired = APIKeyFactory(organization=org, scopes=["read"])
    APIKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - DAY)
    body = assert_error(client_for(key=expired.plaintext).get("/api/v1/organization/"), 401)
    assert body["code"] == "api_key_expired" and "expired on" in body["message"]
    rotated = APIKeyFactory(organization=org, scopes=["read"])
    services.api_key_rotate(api_key=rotated, actor=owner)
    body = assert_error(client_for(key=rotated.plaintext).get("/api/v1/organization/"), 401)
    assert body["code"] == "api_key_expired" and "use the new key" in body["message"]
    revoked = APIKeyFactory(organization=org, scopes=["read"])
    services.api_key_revoke(api_key=revoked, actor=owner)
    body = assert_error(client_for(key=revoked.plaintext).get("/api/v1/organization/"), 401)
    assert body["code"] == "authentication_failed"


# --- Last use --------------------------------------------------------------------------------------


def _apikey_updates(queries) -> list[str]:
    return [
        q["sql"] for q in queries if q["sql"].upper().startswith("UPDATE") and "tenancy_apikey" in q["sql"]
    ]


def test_last_use_is_written_once_a_minute_not_on_every_request(org):
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = client_for(key=key.plaintext)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/organization/").status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/v1/organization/").status_code == 200
    assert len(_apikey_updates(first.captured_queries)) == 1
    assert _apikey_updates(second.captured_queries) == []
    assert len(first) == len(second) + 1
    key.refresh_from_db()
    assert timezone.now() - key.last_used_at < timedelta(seconds=10)
    # A minute later the next request writes again.
    APIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        client.get("/api/v1/organization/")
    assert len(_apikey_updates(later.captured_queries)) == 1


def test_last_use_query_counts_with_django_assert_num_queries(org, django_assert_num_queries):
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = client_for(key=key.plaintext)
    with CaptureQueriesContext(connection) as baseline:
        client.get("/api/v1/organization/")
    with django_assert_num_queries(len(baseline) - 1):
        client.get("/api/v1/organization/")


def test_the_write_is_conditional_so_a_stale_read_does_not_overwrite_a_recent_use(org):
    """Two requests read the key before either wrote: the second's UPDATE matches no row."""
    key = APIKeyFactory(organization=org, scopes=["read"])
    stale = APIKey.objects.get(pk=key.pk)  # read while last_used_at was still empty
    recent = timezone.now() - timedelta(seconds=5)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=recent)  # another request wrote meanwhile
    with CaptureQueriesContext(connection) as queries:
        record_use(stale)
    assert len(_apikey_updates(queries.captured_queries)) == 1
    key.refresh_from_db()
    assert key.last_used_at == recent


# --- The admin -------------------------------------------------------------------------------------


def test_admin_create_caps_the_expiry(admin_role_client, org):
    response = admin_role_client.post(
        "/admin/tenancy/apikey/add/",
        {"name": "Far", "scopes": ["read"], "expires_at": admin_local(timezone.now() + 120 * DAY)},
    )
    assert response.status_code == 200 and "A key can last at most 90 days" in response.content.decode()
    assert not APIKey.objects.filter(organization=org).exists()
    page = admin_role_client.get("/admin/tenancy/apikey/add/").content.decode()
    assert "Blank: 90 days from now" in page
    admin_role_client.post(
        "/admin/tenancy/apikey/add/", {"name": "Default", "scopes": ["read"], "expires_at": ""}
    )
    key = APIKey.objects.get(organization=org, name="Default")
    assert 89 * DAY < lifetime_left(key) <= 90 * DAY


def test_admin_rotate_caps_the_new_key_and_starts_a_new_lifetime(admin_role_client, org):
    key = APIKeyFactory(organization=org, name="Portal", expires_at=timezone.now() + 2 * DAY)
    refused = admin_role_client.post(
        f"/admin/tenancy/apikey/{key.pk}/rotate/",
        {"grace_minutes": 0, "expires_at": admin_local(timezone.now() + 200 * DAY)},
        follow=True,
    )
    assert "A key can last at most 90 days" in refused.content.decode()
    assert not APIKey.objects.filter(rotated_from=key).exists()
    admin_role_client.post(f"/admin/tenancy/apikey/{key.pk}/rotate/", {"grace_minutes": 0, "expires_at": ""})
    assert lifetime_left(APIKey.objects.get(rotated_from=key)) > 89 * DAY


def test_admin_flags_a_key_near_expiry_on_its_page_and_the_dashboard(admin_role_client, org, other_org):
    soon = APIKeyFactory(organization=org, name="Soon to end", expires_at=timezone.now() + 3 * DAY)
    APIKeyFactory(organization=org, name="Far away")
    APIKeyFactory(organization=other_org, name="Another firm's", expires_at=timezone.now() + 2 * DAY)
    page = admin_role_client.get(f"/admin/tenancy/apikey/{soon.pk}/change/").content.decode()
    assert "pg-badge-expires-soon" in page and "soon: rotate this key" in page
    dashboard = admin_role_client.get("/admin/").content.decode()
    assert "API keys expiring within 14 days (1)" in dashboard
    assert "Soon to end" in dashboard and "Far away" not in dashboard and "Another firm" not in dashboard


def test_the_dashboard_panel_is_hidden_from_those_who_may_not_read_keys(staff_client, org):
    APIKeyFactory(organization=org, name="Soon to end", expires_at=timezone.now() + 3 * DAY)
    dashboard = staff_client.get("/admin/").content.decode()
    assert "Soon to end" not in dashboard and "API keys expiring" not in dashboard


# --- The command -----------------------------------------------------------------------------------


def test_the_command_defaults_to_and_refuses_beyond_the_maximum(org):
    call_command(
        "create_api_key", "--org", org.slug, "--name", "Default", "--scopes", "read", stdout=StringIO()
    )
    assert lifetime_left(APIKey.objects.get(name="Default")) > 89 * DAY
    with pytest.raises(CommandError, match="at most 90 days"):
        call_command(
            "create_api_key",
            "--org",
            org.slug,
            "--name",
            "Far",
            "--scopes",
            "read",
            "--expires-in-days",
            "91",
        )


# --- The migration ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_0003_gives_keys_without_expiry_now_plus_90_days_and_keeps_the_others():
    """Keys stored before the policy get the migration's time plus 90 days (not created_at + 90, which
    would cut old clients off at the deploy); a key that had an expiry keeps it."""
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        [("tenancy", "0002_organization_config_stamp")],
        [("tenancy", "0003_apikey_expiry_required")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    Organization = old_apps.get_model("tenancy", "Organization")
    OldKey = old_apps.get_model("tenancy", "APIKey")
    organization = Organization.objects.create(name="Old firm", slug="old-firm")
    long_ago = timezone.now() - 400 * DAY
    kept = timezone.now() + 5 * DAY
    never = OldKey.objects.create(
        organization=organization, name="never", prefix="aaaa0001", hashed_secret="x"
    )
    OldKey.objects.filter(pk=never.pk).update(created_at=long_ago)
    dated = OldKey.objects.create(
        organization=organization, name="dated", prefix="aaaa0002", hashed_secret="x", expires_at=kept
    )
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    try:
        never_now = APIKey.objects.get(pk=never.pk)
        assert 90 * DAY - timedelta(minutes=5) < lifetime_left(never_now) <= 90 * DAY
        assert APIKey.objects.get(pk=dated.pk).expires_at == kept
    finally:
        # Back to the latest migrations: going back to 0002 also unapplied the later ones (0004's
        # invitations), which the next tests of this worker's database need.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
