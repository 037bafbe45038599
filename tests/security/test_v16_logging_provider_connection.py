"""ASVS 5.0 level 2, chapter V16 (security logging), for "Test connection" on a model provider's page
(issue 18): each test is an audit event, and the provider's key is written nowhere."""

from __future__ import annotations

import json
import logging

import pytest

from agents.runtime.errors import ProviderError
from agents.runtime.providers import get_provider
from agents.runtime.providers.base import ModelRequest
from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    KEY,
    _fresh_rate_limits,
    connection_events,
    error_body,
    local_provider,
    models_list,
    press,
)

pytestmark = pytest.mark.django_db


def test_v16_2_1_each_test_is_audited_with_who_and_the_outcome(
    admin_role_client,
    admin_user,
    httpserver,
    local_provider,  # noqa: F811
):
    """ASVS 5.0 V16.2.1: each press is a ``provider.test`` event naming the person, the provider, the
    outcome, how it asked and the error."""
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/models").respond_with_json(models_list("gpt-test"))
    httpserver.expect_ordered_request("/v1/models").respond_with_json(error_body("no"), status=401)
    press(admin_role_client, provider)
    press(admin_role_client, provider)
    ok, failed = connection_events(provider)
    assert ok.actor_user_id == failed.actor_user_id == admin_user.pk
    assert ok.object_type.endswith("modelprovider") and ok.object_id == str(provider.pk)
    assert (ok.after["outcome"], ok.after["method"], ok.after["models"]) == ("ok", "models", 1)
    assert failed.after["outcome"] == "failed" and "HTTP 401" in failed.after["error"]


def test_v16_2_5_the_key_is_in_no_log_event_or_page(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    settings,
    caplog,
):
    """ASVS 5.0 V16.2.5 (sensitive data not logged): whatever the outcome — listed, refused key,
    blocked by the guard — the key is in neither the answer, the audit events nor the log records,
    while the provider did receive it; the page without JavaScript is read after its redirect."""
    caplog.set_level(logging.DEBUG)
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/models").respond_with_json(models_list("gpt-test"))
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        error_body(f"bad key {KEY}"), status=401
    )
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        error_body(f"bad key {KEY}"), status=401
    )
    pages = [press(admin_role_client, provider).content.decode() for _ in range(2)]
    pages.append(followed(admin_role_client, provider))
    settings.PROVIDER_ALLOWED_HOSTS = []
    pages.append(followed(admin_role_client, provider))
    assert "Connection test failed" in pages[2] and "HTTP 401" in pages[2]
    assert "Blocked by the outbound policy" in pages[3]
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEY}"
    events = connection_events(provider)
    assert len(events) == 4
    recorded = json.dumps([[e.before, e.after, e.object_repr] for e in events])
    assert KEY not in recorded and KEY not in caplog.text
    assert all(KEY not in page for page in pages)


def followed(client, provider) -> str:
    """The provider's page a person without JavaScript lands on after pressing "Test connection"."""
    response = press(client, provider, htmx=False)
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


ECHOED = f"key {KEY} is not valid for this request"


@pytest.mark.parametrize(
    "answers",
    [
        # A provider's own 400 (its message is shown): the key it echoes is not.
        [("/v1/models", 400, error_body(ECHOED))],
        # No model list (404), then the one-token request's 404 naming the key.
        [("/v1/models", 404, error_body(ECHOED)), ("/v1/chat/completions", 404, error_body(ECHOED))],
        # A provider's 5xx, and another service's 502 page echoing the request (its body is logged).
        [("/v1/models", 500, error_body(ECHOED))],
        [("/v1/models", 502, f"<pre>Authorization: Bearer {KEY}</pre>")],
        # A model list (200) naming the key.
        [("/v1/models", 200, models_list(KEY, "gpt-test"))],
    ],
    ids=["400", "404-then-404", "500", "502-html", "200-list"],
)
def test_v16_2_5_a_provider_echoing_the_key_does_not_spread_it(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    caplog,
    answers,
):
    """ASVS 5.0 V16.2.5: a provider (or another service) whose answer repeats the key it was sent —
    in an error message, a page or a model's name — has the key replaced with ``[redacted]`` before
    the answer is shown, audited or logged."""
    caplog.set_level(logging.DEBUG)
    provider = local_provider()
    for path, status, body in answers:
        if isinstance(body, dict):
            httpserver.expect_request(path).respond_with_json(body, status=status)
        else:
            httpserver.expect_request(path).respond_with_data(body, status=status, content_type="text/html")
    pages = [press(admin_role_client, provider).content.decode(), followed(admin_role_client, provider)]
    assert len(httpserver.log) == 2 * len(answers)
    recorded = json.dumps([[e.before, e.after] for e in connection_events(provider)])
    for text in (*pages, recorded, caplog.text):
        assert KEY not in text
    if answers[0][1] != 500:  # a provider's 5xx is shown by its status alone
        assert "[redacted]" in "".join((*pages, recorded, caplog.text))


def test_v16_2_5_a_runs_error_does_not_carry_the_echoed_key(
    httpserver,
    local_provider,  # noqa: F811
    caplog,
):
    """ASVS 5.0 V16.2.5: the runs' error paths share the redaction: a provider's 400 repeating the key
    gives a reason (what the run records and shows) without it, and another service's page repeating it
    is logged without it."""
    caplog.set_level(logging.DEBUG)
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        error_body(ECHOED), status=400
    )
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_data(
        f"<pre>Authorization: Bearer {KEY}</pre>", status=502, content_type="text/html"
    )
    request = ModelRequest(messages=[{"role": "user", "content": "Hi"}], model="gpt-test", timeout=5)
    reasons = []
    for _ in range(2):
        with pytest.raises(ProviderError) as raised:
            get_provider(provider).complete(request)
        reasons.append(raised.value.reason)
    assert (
        reasons[0] == "provider rejected the request (HTTP 400): key [redacted] is not valid for this request"
    )
    assert reasons[1] == "provider unreachable (Local model)"
    assert "Bearer [redacted]" in caplog.text and KEY not in caplog.text
