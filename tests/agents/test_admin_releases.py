"""The releases' staff pages: the agent page's section and "Create release", the releases list, a
release's page, the diff of two releases, and the release shown on the executions."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from agents.models import LearningExampleStatus, Release
from agents.services import learning_example_create, release_create
from personas.services import persona_create
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    AgentToolFactory,
    ExecutionFactory,
    PersonaFactory,
    ToolFactory,
    release_now,
)

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
IBAN_MASKED = "DE89 •••• 3000"


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True, system_prompt="You are a VAT specialist.")
    return agent


def _two_releases(agent):
    first = release_now(agent, notes="First")
    persona_create(
        agent=agent,
        actor=None,
        name="Senior",
        system_prompt="You are a senior VAT specialist. <b>Cite</b> the guidance.",
        activate=True,
    )
    second = release_create(agent=agent, actor=None, notes="Senior wording")
    return first, second


def _url(name, agent, *args):
    return reverse(f"admin:{name}", args=[agent.pk, *args])


# --- Create ---------------------------------------------------------------------------------------


def test_editor_creates_a_release_from_the_agent_page(agent, staff_client, editor):
    """The agent page offers "Create release" with notes; the POST creates it (audited) and opens it."""
    page = staff_client.get(_url("agents_agent_detail", agent)).content.decode()
    assert 'id="create-release"' in page and "Create release" in page
    response = staff_client.post(
        _url("agents_agent_release_create", agent), {"notes": "Reviewed by A. Keller", "next": "agent"}
    )
    release = Release.objects.get(agent=agent)
    assert response.status_code == 302
    assert response["Location"] == _url("agents_agent_release", agent, release.number)
    assert release.notes == "Reviewed by A. Keller" and release.created_by == editor
    assert AuditEvent.objects.filter(action="release.create", actor_user=editor).exists()


def test_create_refused_when_nothing_changed_says_why(agent, staff_client):
    release_create(agent=agent, actor=None)
    response = staff_client.post(_url("agents_agent_release_create", agent), {"next": "agent"}, follow=True)
    assert Release.objects.filter(agent=agent).count() == 1
    assert "Nothing has changed since release 1" in response.content.decode()
    assert response.redirect_chain[-1][0] == _url("agents_agent_detail", agent)


def test_create_needs_post_and_valid_notes(agent, staff_client):
    assert staff_client.get(_url("agents_agent_release_create", agent)).status_code == 405
    response = staff_client.post(
        _url("agents_agent_release_create", agent), {"notes": "x" * 10_001}, follow=True
    )
    assert "Release notes:" in response.content.decode()
    assert not Release.objects.filter(agent=agent).exists()


def test_viewer_sees_releases_but_cannot_create(agent, viewer_admin_client):
    release_create(agent=agent, actor=None)
    page = viewer_admin_client.get(_url("agents_agent_detail", agent)).content.decode()
    assert "Release 1" in page and 'id="create-release"' not in page
    assert viewer_admin_client.get(_url("agents_agent_releases", agent)).status_code == 200
    assert viewer_admin_client.post(_url("agents_agent_release_create", agent)).status_code == 403
    assert Release.objects.filter(agent=agent).count() == 1


def test_other_organisations_release_pages_404(other_org, staff_client):
    foreign = AgentFactory(organization=other_org)
    PersonaFactory(agent=foreign, is_active=True)
    release_create(agent=foreign, actor=None)
    for response in (
        staff_client.get(_url("agents_agent_releases", foreign)),
        staff_client.get(_url("agents_agent_release", foreign, 1)),
        staff_client.get(_url("agents_agent_release_diff", foreign) + "?a=1&b=1"),
        staff_client.post(_url("agents_agent_release_create", foreign)),
    ):
        assert response.status_code == 404
    assert Release.objects.filter(agent=foreign).count() == 1


def test_anonymous_is_sent_to_login(agent, client):
    response = client.get(_url("agents_agent_releases", agent))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- Pages --------------------------------------------------------------------------------------


def test_agent_page_shows_the_active_release(agent, staff_client):
    first, second = _two_releases(agent)
    page = staff_client.get(_url("agents_agent_detail", agent)).content.decode()
    active = re.search(r'id="active-release">(.*?)</dd>', page, re.S).group(1)
    assert "Release 1" in active and first.short_hash in active
    assert "Release 2" in page  # listed, not active


def test_release_list_query_count_is_constant(agent, staff_client, django_assert_num_queries):
    """The releases page costs the same queries whatever the number of releases and their runs."""
    first, second = _two_releases(agent)
    ExecutionFactory(agent=agent, release=first)
    url = _url("agents_agent_releases", agent)
    staff_client.get(url)  # warm the session and the site's caches
    with django_assert_num_queries(7) as small:
        assert staff_client.get(url).status_code == 200
    for n in range(3, 8):
        persona_create(agent=agent, actor=None, name="V", system_prompt=f"Version {n}.", activate=True)
        release = release_create(agent=agent, actor=None)
        ExecutionFactory.create_batch(2, agent=agent, release=release)
    with django_assert_num_queries(len(small.captured_queries)):
        response = staff_client.get(url)
    page = response.content.decode()
    assert page.count("<tr><td><a href") == 7


def test_release_page_content_and_executions_link(org, agent, staff_client):
    """A release's page shows its prompt, model, tools with settings, hash, author, notes and how many
    executions ran it, linked to the executions list filtered to them."""
    tool = ToolFactory(organization=org, name="VIES check", secret_headers='{"X-Key": "s3cr3t"}')
    AgentToolFactory(agent=agent, tool=tool, settings={"timeout": 10})
    release = release_now(agent, notes="Reviewed <script>alert(1)</script>")
    ExecutionFactory.create_batch(3, agent=agent, release=release)
    ExecutionFactory(agent=agent)  # a run of no release
    page = staff_client.get(_url("agents_agent_release", agent, 1)).content.decode()
    assert "You are a VAT specialist." in page and release.content_hash in page
    assert "VIES check" in page and "&quot;timeout&quot;: 10" in page
    assert "s3cr3t" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    link = re.search(r'id="release-executions" href="([^"]+)">3 runs', page)
    assert link, page
    listing = staff_client.get(link.group(1).replace("&amp;", "&"))
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 3


def test_release_page_masks_examples_for_viewers(agent, staff_client, viewer_admin_client):
    learning_example_create(
        agent=agent, actor=None, input=f"Refund {IBAN}?", output="Yes.", status=LearningExampleStatus.APPROVED
    )
    release_create(agent=agent, actor=None)
    url = _url("agents_agent_release", agent, 1)
    assert f"Refund {IBAN}?" in staff_client.get(url).content.decode()
    viewer_page = viewer_admin_client.get(url).content.decode()
    assert IBAN not in viewer_page and IBAN_MASKED in viewer_page


def test_unknown_release_404(agent, staff_client):
    assert staff_client.get(_url("agents_agent_release", agent, 9)).status_code == 404


def test_diff_page_word_by_word_side_by_side_escaped(agent, staff_client):
    """The prompt is diffed word by word in two columns: the added words marked on the right, the
    text escaped (a prompt's markup is shown, never rendered)."""
    _two_releases(agent)
    response = staff_client.get(_url("agents_agent_release_diff", agent) + "?a=1&b=2")
    assert response.status_code == 200
    page = response.content.decode()
    table = re.search(
        r'<table class="pg-diff pg-diff-sbs pg-diff-words" data-field="system_prompt">(.*?)</table>',
        page,
        re.S,
    )
    assert table, page
    html = table.group(1)
    assert '<ins class="pg-diff-mark">senior </ins>' in html
    assert "&lt;b&gt;Cite&lt;/b&gt;" in html and "<b>Cite" not in html
    assert '<td class="pg-old pg-del">You are a VAT specialist' in html
    assert "Release 1" in page and "Release 2" in page


def test_diff_page_bad_choices_400(agent, staff_client):
    _two_releases(agent)
    url = _url("agents_agent_release_diff", agent)
    assert staff_client.get(url + "?a=1&b=1").status_code == 400
    assert staff_client.get(url + "?a=1&b=9").status_code == 400
    assert staff_client.get(url + "?a=x&b=2").status_code == 400
    assert staff_client.get(url).status_code == 200  # the choice, no diff yet


# --- Executions show their release --------------------------------------------------------------


def test_executions_list_and_page_show_the_release(agent, staff_client):
    release = release_now(agent)
    ran = ExecutionFactory(agent=agent, release=release)
    draft = ExecutionFactory(agent=agent, is_test=True)
    listing = staff_client.get(reverse("admin:agents_execution_changelist")).content.decode()
    release_url = _url("agents_agent_release", agent, 1)
    assert f'<a href="{release_url}" title="{release.short_hash}">Release 1</a>' in listing
    assert "Draft (test)" in listing
    page = staff_client.get(reverse("admin:agents_execution_change", args=[ran.pk])).content.decode()
    assert re.search(r'id="execution-release"><a href="[^"]+"[^>]*>Release 1</a>', page)
    page = staff_client.get(reverse("admin:agents_execution_change", args=[draft.pk])).content.decode()
    assert "Draft (test)" in page
