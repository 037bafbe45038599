"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

One headless browser per test process (with ``pytest -n 2`` each xdist worker has its own
browser, live server and test database); a fresh browser context per test. Every page
the tests open is watched for console errors, uncaught exceptions and Content-Security-Policy
violations (``Watcher``); screenshots go to ``test-artifacts/screenshots/``.

Background tasks (document processing) run for real: the ``task_worker`` fixture runs
django-tasks-db's worker loop in a thread of the test process, against the test database, when the
test starts it. Uploads go through the same queue as in production (``DJANGO_TASKS_BACKEND``'s
default, the database backend), and the page's live status is seen changing from queued to ready.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password

# Reports CSP violations (and errors the page swallows) to the test through an exposed binding.
# Injected by the browser before any page script (not subject to the page's CSP).
WATCH_SCRIPT = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__pgReport && window.__pgReport(JSON.stringify({
    kind: "csp", directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition,
  }));
});
"""


@dataclass
class Watcher:
    """Collects what went wrong on the pages of one browser context."""

    problems: list[str] = field(default_factory=list)

    def console(self, message) -> None:
        if message.type == "error":
            location = message.location or {}
            if str(location.get("url", "")).endswith("/favicon.ico"):
                # Chromium's own request, made once per browser rather than per page: whether the
                # site has an icon is checked deterministically by test_pages.test_site_has_an_icon.
                return
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location else ""
            self.problems.append(f"console error: {message.text}{where}")

    def page_error(self, error) -> None:
        self.problems.append(f"uncaught exception: {error}")

    def report(self, source, payload: str) -> None:
        data = json.loads(payload)
        page_url = source.get("page").url if isinstance(source, dict) and source.get("page") else ""
        self.problems.append(
            f"CSP violation on {page_url}: {data['directive']} blocked {data['blocked'] or 'inline'}"
            f" (source {data['source']}:{data['line']}, sample {data['sample']!r})"
        )

    def take(self) -> list[str]:
        """The problems since the last call (and forget them)."""
        problems, self.problems = self.problems, []
        return problems


@pytest.fixture(autouse=True)
def _postgresql_only():
    """The browser tests run on PostgreSQL (scripts/test); SQLite's in-memory test database is
    not shared with the task worker thread."""
    if connection.vendor != "postgresql":
        pytest.skip("browser tests run on PostgreSQL only (set DATABASE_URL)")


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests of this test process.

    Package scope: Playwright's sync API keeps an asyncio loop running in this thread while it is
    alive, so it is stopped as soon as the last browser test of the process has run, and the other
    tests never see that loop (nor the async-safety switch below).
    """
    from playwright.sync_api import expect, sync_playwright

    # The ORM calls the tests make between browser actions are ordinary synchronous code; Django's
    # async-safety guard only sees Playwright's loop.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Generous for a loaded 2-core CI machine; a passing test never waits for it.
    expect.set_options(timeout=15_000)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def watcher() -> Watcher:
    return Watcher()


@pytest.fixture
def context(browser, live_server, watcher):
    """A fresh browser context (cookies, storage) against the live server, watched for problems."""
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    ctx.set_default_timeout(15_000)
    ctx.expose_binding("__pgReport", watcher.report)
    ctx.add_init_script(WATCH_SCRIPT)
    ctx.on("page", lambda page: _watch(page, watcher))
    yield ctx
    ctx.close()


def _watch(page, watcher: Watcher) -> None:
    page.on("console", watcher.console)
    page.on("pageerror", watcher.page_error)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


@pytest.fixture
def page(context, request):
    """A page of the test's context; if the test fails, its last state is kept as a screenshot."""
    page = context.new_page()
    yield page
    failed = SCREENSHOTS / f"FAILED-{re.sub(r'[^A-Za-z0-9_.-]+', '-', request.node.name)}.png"
    if getattr(request.node, "e2e_failed", False) and not page.is_closed():
        page.screenshot(path=str(failed), full_page=True, caret="initial")
    else:
        failed.unlink(missing_ok=True)  # an earlier run's failure, now fixed


@pytest.fixture
def org(transactional_db):
    return OrganizationFactory(name="Demo Firm", slug="demo-firm")


@pytest.fixture
def editor(org):
    """Mira: a staff member and editor of the firm."""
    user = UserFactory(username="mira", first_name="Mira", is_staff=True)
    MembershipFactory(user=user, organization=org, role="owner")
    return user


def sign_in(context, live_server, user) -> None:
    """Put a signed-in session for ``user`` into the browser context (no login form round trip)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def signed_in_page(context, page, live_server, editor):
    sign_in(context, live_server, editor)
    return page


def screenshot(page, name: str) -> Path:
    """A full-page screenshot. ``caret="initial"``: Playwright's caret hiding would leave ``style=""``
    on text fields, which htmx then copies while settling a swap — a CSP violation of the test's own
    making."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


class TaskWorker:
    """The worker ``manage.py db_worker`` runs (with its heartbeat thread) in a thread of the test
    process, started when the test says."""

    def __init__(self):
        from prisma_glow.worker.runner import LeasedWorker

        self.worker = LeasedWorker(
            queue_names=["*"],
            interval=0.1,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="e2e-worker",
            excluded_queue_names=[],
        )
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            self.errors.append(exc)
        finally:
            connections.close_all()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="e2e-task-worker", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.worker.running = False
        if self.thread is not None:
            self.thread.join(timeout=10)


@pytest.fixture
def task_worker(live_server):
    """A worker for the live server's queued tasks (``.start()`` it); stopped after the test."""
    worker = TaskWorker()
    yield worker
    worker.stop()
    assert not worker.errors, f"the task worker crashed: {worker.errors[0]!r}"
