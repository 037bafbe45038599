"""Schema fuzzing: schemathesis over every operation of ``/api/v1/schema/``, in process (WSGI).

Authenticated with an API key holding every scope; every check schemathesis has, named explicitly
(``ALL_CHECKS``: what ``schemathesis run --checks all`` runs); positive and negative generation. Runs
on PostgreSQL only (marker ``fuzz``), which rejects what SQLite lets through (NUL characters, integer
overflow). Examples are derandomised so ``make test`` is repeatable; set
``PRISMA_GLOW_FUZZ_EXAMPLES=50`` and/or ``PRISMA_GLOW_FUZZ_RANDOM=1`` to explore further, or run
``make fuzz`` (the CLI against a live server, with the stateful phase). Reviewed exclusions are in
``schemathesis.toml`` next to this file (read by both) and in docs/api.md, with their reasons.

Operations are driven one by one with ``operation.as_strategy()`` rather than
``schemathesis.pytest.from_fixture`` (whose lazy loader does not run under pytest 9), so the schema
is loaded inside the test, with the test database available.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.fuzz]
load_all_checks()

MAX_EXAMPLES = int(os.environ.get("PRISMA_GLOW_FUZZ_EXAMPLES", "6"))
DERANDOMIZE = os.environ.get("PRISMA_GLOW_FUZZ_RANDOM", "") != "1"
# Every built-in check of schemathesis, named explicitly rather than trusting a default: server
# errors, statuses, content types, response headers and bodies, negative data rejected, positive data
# accepted, missing required headers, unsupported methods and their Allow header, ignored auth, and the
# stateful ones (use after free, resource availability, object-level authorization), which need a
# recorded scenario: they act in `make fuzz`'s stateful phase and pass vacuously here.
ALL_CHECKS = [check for check in CHECKS.get_all() if not is_check_class(check)]
EXPECTED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}
# Reviewed exclusions, one check on one operation each, with their reasons: in this file, which
# `make fuzz` reads too, and in docs/api.md.
CONFIG_PATH = Path(__file__).with_name("schemathesis.toml")


def _checks_for(operation) -> list:
    """Every check, less those the configuration turns off for this operation."""
    config = operation.schema.config.checks_config_for(operation=operation, phase=None)
    return [check for check in ALL_CHECKS if config.get_by_name(name=check.__name__).enabled]


@pytest.fixture
def wsgi_app(db):
    """The project's WSGI application, kept from closing the test's database connection around each
    request (Django's test client does the same; here the app is called directly)."""
    if connection.vendor != "postgresql":
        pytest.skip("schema fuzzing runs on PostgreSQL only")
    from prisma_glow.wsgi import application

    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield application
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_key(db, settings):
    """An all-scopes key in an organisation with an owner, and rate limits off.

    Rate limits are off because the fuzzer sends thousands of requests with one key; 429 stays
    declared on every operation and is tested against Redis in test_auth_ratelimit.py.
    """
    settings.RATELIMIT_ENABLE = False
    org = OrganizationFactory(name="Fuzz Firm", slug="fuzz-firm")
    MembershipFactory(organization=org, user=UserFactory(username="fuzz-owner"), role="owner")
    return APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])


def _fuzz_operation(operation, headers: dict) -> int:
    checks = _checks_for(operation)
    sent = 0
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case):
        nonlocal sent
        sent += 1
        # Each request in a savepoint rolled back afterwards: in production every request runs in
        # autocommit, so a database error must not poison the requests that follow it here either.
        with transaction.atomic():
            try:
                case.call_and_validate(headers=headers, checks=checks)
            finally:
                transaction.set_rollback(True)

    run()
    return sent


@pytest.fixture
def quiet_request_log():
    """Thousands of 4xx answers are expected here; keep django.request's warnings out of the output."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_api(wsgi_app, fuzz_key, quiet_request_log):
    """Every operation answers every generated request as its schema says, without a server error."""
    config = SchemathesisConfig.from_path(CONFIG_PATH)
    api_schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app, config=config)
    headers = {"Authorization": f"Api-Key {fuzz_key.plaintext}"}
    failures, tested, sent = [], 0, 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        tested += 1
        try:
            sent += _fuzz_operation(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, report together
            failures.append(f"--- {operation.label}\n{str(exc)[:3000]}")
    print(f"schemathesis: {tested} operations, {sent} generated requests")
    # Every operation of the API (160 when this was written: agents, personas, releases, activation
    # requests, conversations, executions, evaluations, budgets, API keys, members…).
    assert tested >= 150, f"only {tested} operations in the schema"
    assert not failures, f"{len(failures)} of {tested} operations failed:\n\n" + "\n\n".join(failures)


def test_every_check_runs():
    """The test names every built-in check itself: none is left to a default that could change."""
    assert {check.__name__ for check in ALL_CHECKS} >= EXPECTED_CHECKS


def test_each_exclusion_is_reviewed_in_the_docs():
    """Each [[operations]] entry of schemathesis.toml turns one check off on one operation, and
    docs/api.md's table of reviewed exclusions lists exactly those (operation, check) pairs."""
    entries = tomllib.loads(CONFIG_PATH.read_text())["operations"]
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    known_limit = docs[docs.index("Known limit: free-form JSON") :].split("\n\n")[0]
    configured = set()
    for entry in entries:
        # include-name: "METHOD /path" (include-method with include-path would match either).
        if "generation" in entry:
            # The known limit: strings without NUL on an operation taking free-form JSON, listed.
            assert entry == {"include-name": entry["include-name"], "generation": {"allow-x00": False}}
            assert f"`{entry['include-name']}`" in known_limit, entry
            continue
        assert set(entry) == {"include-name", "checks"}, entry
        (name, setting), *others = entry["checks"].items()
        assert not others and setting == {"enabled": False}, entry
        configured.add((entry["include-name"], name))
    table = docs[docs.index("Reviewed exclusions") :]
    documented = set()
    for row in re.findall(r"^\| (`[A-Z]+ /api/v1/.*)$", table, re.MULTILINE):
        operations, check = row.split(" | ")[:2]
        for operation in re.findall(r"`([A-Z]+ /api/v1/[^`]*)`", operations):
            documented.add((operation, check.strip("`")))
    assert configured == documented
