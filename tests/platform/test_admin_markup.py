"""No user-controlled markup in the staff UI (issue 13, finding 1).

- No template the project ships marks a value safe (``|safe``, ``{% autoescape off %}``).
- Every element of our templates that issues an htmx request carries ``{% pg_htmx %}``, the page's
  token that ``static/admin_ui/admin_ui.js`` requires before it sends a request with the CSRF header.
- The functions that build markup (search highlights, guardrail spans) escape what they are given.
- A firm whose every text (names, descriptions, schemas, documents, answers, traces, audit values)
  is markup shows it on every staff page as text, inside ``hx-disable`` containers, and no element
  of those pages can issue an htmx request without the token.

The browser replays the attack in ``tests/e2e/test_injection.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from bs4 import BeautifulSoup
from django.apps import apps
from django.conf import settings
from django.template.loader import render_to_string

from prisma_glow.admin.templatetags import highlight_spans, highlight_terms, htmx_token
from tests.support.admin import login

# --- Payloads ----------------------------------------------------------------------------------
ADD_OWNER = "/admin/tenancy/membership/add/"
#: Finding 1 as reported: an htmx element that makes the viewer's browser add an owner.
HTMX_DIV = (
    f'<div hx-post="{ADD_OWNER}" hx-trigger="load" '
    'hx-vals=\'{"user_identifier":"someone","role":"owner"}\' hx-swap="none"></div>'
)
IMG = "<img src=x onerror=alert(1)>"
FORM = f'<form action="{ADD_OWNER}" method="post"><button>Add</button></form>'
#: Short enough for names (120 characters).
SHORT = f'<b hx-post="{ADD_OWNER}" hx-trigger="load">x</b>{IMG}'
LONG = f"Text {HTMX_DIV} {IMG} {FORM} end"
#: What shows that a text node holds one of the payloads.
MARKERS = ("hx-trigger=", "onerror=")
HX_VERBS = ("hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete")
#: Elements whose content is only ever text for the HTML parser (RCDATA or option text).
TEXT_ONLY = {"title", "textarea", "option"}


# --- The templates the project ships -----------------------------------------------------------
def project_template_dirs() -> list[Path]:
    """Every TEMPLATES ``DIRS`` entry and the ``templates`` folder of each of our own apps (those
    inside the repository, not installed packages)."""
    base = Path(settings.BASE_DIR).resolve()
    dirs = [Path(d).resolve() for conf in settings.TEMPLATES for d in conf.get("DIRS", [])]
    for app in apps.get_app_configs():
        path = Path(app.path).resolve()
        if path.is_relative_to(base) and ".venv" not in path.parts and (path / "templates").is_dir():
            dirs.append(path / "templates")
    return sorted(set(dirs))


def project_templates() -> list[Path]:
    return sorted(p for d in project_template_dirs() for p in d.rglob("*") if p.is_file())


UNSAFE = re.compile(r"\|\s*safe(seq)?\b|\{%\s*autoescape\s+off\s*%\}")
HX_REQUEST_ATTR = re.compile(r"\s(?:data-)?hx-(?:get|post|put|patch|delete)\s*=")


def unsafe_uses(text: str) -> list[str]:
    return [m.group(0) for m in UNSAFE.finditer(text)]


def unmarked_htmx_tags(text: str) -> list[str]:
    """The tags of ``text`` that issue an htmx request without ``{% pg_htmx %}`` in them."""
    found = []
    for match in HX_REQUEST_ATTR.finditer(text):
        start = text.rfind("<", 0, match.start())
        end = text.find(">", match.end())
        tag = text[start : end + 1]
        if "{% pg_htmx %}" not in tag:
            found.append(tag)
    return found


def test_the_walk_covers_every_template_dir_of_the_project():
    """The walk sees the project's templates (including an app's own templates folder), not
    Django's or another package's."""
    names = {p.relative_to(settings.BASE_DIR).as_posix() for p in project_templates()}
    assert "prisma_glow/templates/admin/pg/fields.html" in names
    assert "knowledge/templates/admin/knowledge/knowledgebase/search.html" in names
    assert "prisma_glow/api/templates/prisma_glow_api/swagger_ui.html" in names
    assert not any("site-packages" in n or n.startswith("..") for n in names)
    assert len(names) >= 30


def test_the_checks_find_what_they_look_for():
    """The two template checks flag the forms they exist for (so their silence means something)."""
    assert unsafe_uses("{{ field.help_text|safe }}") == ["|safe"]
    assert unsafe_uses("{{ x | safe }} {{ y|safeseq }}") == ["| safe", "|safeseq"]
    assert unsafe_uses("{% autoescape off %}{{ x }}{% endautoescape %}") == ["{% autoescape off %}"]
    assert unsafe_uses("{{ x|safe_join }} {{ y }}") == []
    assert unmarked_htmx_tags('<form class="x" hx-post="{{ request.path }}">') == [
        '<form class="x" hx-post="{{ request.path }}">'
    ]
    assert unmarked_htmx_tags('<div {% pg_htmx %} hx-get="{{ u }}" hx-trigger="every 2s">') == []


def test_no_template_marks_a_value_safe():
    """No template the project ships renders a value unescaped: markup that must be emitted is
    built in Python with format_html from escaped parts."""
    offenders = {
        str(p.relative_to(settings.BASE_DIR)): unsafe_uses(p.read_text(encoding="utf-8"))
        for p in project_templates()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_htmx_element_of_the_templates_carries_the_page_token():
    """admin_ui.js sends no request for an element without the token: every element of our
    templates that issues one carries {% pg_htmx %} (and its template loads admin_ui)."""
    offenders = {}
    with_htmx = 0
    for path in project_templates():
        text = path.read_text(encoding="utf-8")
        if HX_REQUEST_ATTR.search(text):
            with_htmx += 1
            if "{% load" not in text or "admin_ui" not in text:
                offenders[str(path)] = ["{% load admin_ui %} missing"]
        if unmarked := unmarked_htmx_tags(text):
            offenders[str(path)] = unmarked
    assert offenders == {}
    assert with_htmx >= 9  # the testers, the editor, the lists that refresh, the console feedback


#: The one markup not built by format_html: the staff guide, which markdown-it-py renders with raw HTML
#: off (every tag of the file shown as text, every text and attribute escaped by its escapeHtml).
#: tests/platform/test_guide.py and tests/security/test_v3_web_frontend_guide.py feed it hostile Markdown.
MARKED_SAFE = {"prisma_glow/guide.py": ["mark_safe("]}


def test_no_python_module_of_the_project_marks_a_string_safe():
    """Markup built in Python comes from format_html / format_html_join (which escape their
    arguments), never from mark_safe or SafeString over a string that may hold user text; the one
    exception is the guide's Markdown, rendered by markdown-it-py with raw HTML off."""
    base = Path(settings.BASE_DIR)
    packages = ["prisma_glow", "agents", "personas", "tools", "guardrails", "knowledge"]
    pattern = re.compile(r"\bmark_safe\(|\bSafeString\(|\bformat_html\(\s*f[\"']|\.allow_tags\b")
    modules = [p for package in packages for p in (base / package).rglob("*.py")]
    assert len(modules) > 50
    offenders = {
        str(p.relative_to(base)): pattern.findall(p.read_text(encoding="utf-8"))
        for p in modules
        if pattern.search(p.read_text(encoding="utf-8"))
    }
    assert offenders == MARKED_SAFE


# --- Functions that build markup ---------------------------------------------------------------
HOSTILE = [HTMX_DIV, IMG, FORM, '"><script>alert(1)</script>', "<mark>fake</mark>"]


def assert_escaped(markup: str, hostile: str) -> None:
    assert hostile not in markup
    soup = BeautifulSoup(markup, "html.parser")
    assert soup.find_all(["div", "img", "form", "script", "b"]) == []
    assert all(not any(a.startswith(("hx-", "on")) for a in el.attrs) for el in soup.find_all(True))
    assert hostile in soup.get_text()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_highlight_spans_escapes_text_and_labels(hostile):
    """The guardrail tester's marked text: the text and each span's label are escaped, and only
    the <mark> elements it writes are markup."""
    text = f"before {hostile} after"
    start = text.index(hostile)
    markup = highlight_spans(text, [(start, start + len(hostile), f'label" onmouseover="x {hostile}')])
    assert_escaped(markup, hostile)
    marks = BeautifulSoup(markup, "html.parser").find_all("mark")
    assert [m.get_text() for m in marks] == [hostile]
    assert marks[0]["title"] == f'label" onmouseover="x {hostile}'
    assert set(marks[0].attrs) == {"class", "title"}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_highlight_terms_escapes_text_and_query(hostile):
    """The search highlight by query words: nothing the text or query holds becomes markup."""
    markup = highlight_terms(f"The reverse charge {hostile} applies.", f"reverse {hostile}")
    assert_escaped(markup, hostile)
    assert "<mark" in markup
    # Without a word to mark, the text comes back escaped all the same.
    assert_escaped(highlight_terms(hostile, ""), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_highlight_template_tags_escape(hostile):
    from django.template import engines

    template = engines["django"].from_string("{% load admin_ui %}<p>{% highlight text query %}</p>")
    html = template.render({"text": f"charge {hostile}", "query": "charge"})
    assert_escaped(html, hostile)
    assert html.count("<mark") == 1


@pytest.mark.parametrize("hostile", HOSTILE)
def test_passage_highlighted_html_escapes(hostile):
    """A retrieved passage's highlighted text (the retrieval tester and the API): escaped text,
    <mark> only around the matches."""
    from knowledge.search import Passage

    text = f"Reverse charge {hostile} applies"
    passage = Passage(
        chunk_id=1, document_id=1, document_title="t", knowledge_base_id=1, ordinal=0, text=text,
        score=1.0, highlights=[(0, 7), (text.index(hostile), text.index(hostile) + len(hostile))],
    )  # fmt: skip
    markup = passage.highlighted_html()
    assert_escaped(markup, hostile)
    assert [m.get_text() for m in BeautifulSoup(markup, "html.parser").find_all("mark")] == [
        "Reverse",
        hostile,
    ]
    assert passage.to_dict()["highlighted_html"] == markup


@pytest.mark.parametrize("hostile", HOSTILE)
def test_persona_diff_renders_escaped(hostile):
    """The persona diff marks changed words in the template, around escaped text."""
    from agents.admin.pages import side_by_side

    rows = side_by_side(f"You are {hostile} calm.", f"You are {hostile} careful.\n{hostile}")
    html = render_to_string(
        "admin/agents/agent/personas.html#diff",
        {"diff": {"from_version": 1, "to_version": 2, "changes": [{"label": "Prompt", "rows": rows}]}},
    )
    assert hostile not in html
    soup = BeautifulSoup(html, "html.parser")
    assert (
        soup.find_all(["img", "form", "script", "b"]) == []
        and soup.find("div", attrs={"hx-post": True}) is None
    )
    assert soup.find(id="persona-diff").has_attr("hx-disable")
    assert hostile in soup.get_text()
    assert [m.get_text() for m in soup.find_all("mark")] == ["calm", "careful"]


def test_tool_schema_texts_become_plain_help_texts_and_labels():
    """A schema's title and description become a form field's label and help text as plain
    strings (never SafeString), whatever their JSON type."""
    from django.utils.safestring import SafeData

    from tools.admin.pages import schema_field

    field = schema_field("x", {"type": "string", "title": SHORT, "description": HTMX_DIV}, False)
    assert (field.label, field.help_text) == (SHORT, HTMX_DIV)
    assert not isinstance(field.help_text, SafeData) and not isinstance(field.label, SafeData)
    field = schema_field("n", {"type": "integer", "title": 7, "description": {"a": 1}}, False)
    assert (field.label, field.help_text) == ("7", "{'a': 1}")


# --- A firm whose every text is markup ---------------------------------------------------------
class PoisonedWorld:
    """One organisation's objects of every kind, each text of which is a payload."""

    def __init__(self, org, owner_user):
        from django.utils import timezone

        from prisma_glow.audit.services import audit_record
        from prisma_glow.tenancy.models import Organization
        from tests.factories import (
            AgentFactory,
            AgentGuardrailFactory,
            AgentKnowledgeFactory,
            AgentToolFactory,
            APIKeyFactory,
            ChunkFactory,
            DocumentFactory,
            ExecutionFactory,
            ExecutionStepFactory,
            FeedbackFactory,
            GuardrailFactory,
            KnowledgeBaseFactory,
            LearningExampleFactory,
            ModelProviderFactory,
            PersonaFactory,
            ToolFactory,
        )

        Organization.objects.filter(pk=org.pk).update(name=f"Firm {SHORT}")
        owner_user.first_name = SHORT[:150]
        owner_user.save(update_fields=["first_name"])
        self.org = org
        self.provider = ModelProviderFactory(organization=org, name=f"P {SHORT}")
        self.agent = AgentFactory(organization=org, name=f"A {SHORT}", slug="agent-x", description=LONG)
        self.persona = PersonaFactory(
            agent=self.agent, name=f"P {SHORT}", system_prompt=LONG, tone=IMG, is_active=True
        )
        self.persona2 = PersonaFactory(
            agent=self.agent, name=f"Q {SHORT}", system_prompt=f"{LONG}\nmore {HTMX_DIV}"
        )
        schema = {
            "type": "object",
            "properties": {
                "net": {"type": "string", "title": f"Net {SHORT}", "description": LONG},
                "mode": {"enum": [SHORT, "b"], "description": HTMX_DIV},
                "extra": {"description": FORM},
            },
        }
        self.tool = ToolFactory(
            organization=org, name=f"T {SHORT}", slug="tool-x", description=LONG, input_schema=schema
        )
        self.guardrail = GuardrailFactory(organization=org, name=f"G {SHORT}", description=LONG)
        self.kb = KnowledgeBaseFactory(organization=org, name=f"K {SHORT}", description=LONG)
        self.document = DocumentFactory(
            knowledge_base=self.kb, title=f"D {SHORT}", chunk_count=1, error=LONG,
            metadata={"filename": f"f {SHORT}.txt"}, jurisdiction="EU",
        )  # fmt: skip
        self.chunk = ChunkFactory(
            document=self.document, ordinal=0, text=f"reverse charge {LONG}", heading_path=SHORT
        )
        AgentToolFactory(agent=self.agent, tool=self.tool)
        AgentKnowledgeFactory(agent=self.agent, knowledge_base=self.kb)
        AgentGuardrailFactory(agent=self.agent, guardrail=self.guardrail)
        citation = {
            "n": 1,
            "document_id": self.document.pk,
            "chunk_id": self.chunk.pk,
            "citation": SHORT,
            "text": LONG,
        }
        self.execution = ExecutionFactory(
            agent=self.agent, persona=self.persona, input=LONG, output=LONG, error=LONG, status="failed",
            citations=[citation], model=SHORT[:100],
        )  # fmt: skip
        ExecutionStepFactory(
            execution=self.execution, ordinal=1, kind="tool_call", name=SHORT,
            input={"arguments": {"q": LONG}}, output={"result": LONG}, started_at=timezone.now(),
        )  # fmt: skip
        FeedbackFactory(execution=self.execution, rating=-1, comment=LONG, correction=LONG)
        self.example = LearningExampleFactory(agent=self.agent, organization=org, input=LONG, output=LONG)
        self.api_key = APIKeyFactory(organization=org, name=f"K {SHORT}"[:100])
        self.audit_event = audit_record(
            organization=org, action="agent.update", actor=owner_user, obj=self.agent,
            before={"name": LONG, "nested": {"x": [HTMX_DIV]}}, after={"name": SHORT},
        )  # fmt: skip

    def pages(self) -> dict[str, str]:
        a = self.agent.pk
        pages = {
            "dashboard": "/admin/",
            "agent-registry": "/admin/agents/agent/",
            "agent-registry-search": f"/admin/agents/agent/?q={IMG}",
            "agent-detail": f"/admin/agents/agent/{a}/overview/",
            "agent-settings": f"/admin/agents/agent/{a}/change/",
            "persona-versions": f"/admin/agents/agent/{a}/personas/",
            "persona-diff": f"/admin/agents/agent/{a}/personas/?a=1&b=2",
            "persona-editor": f"/admin/agents/agent/{a}/personas/{self.persona.pk}/edit/",
            "tool-assignments": f"/admin/agents/agent/{a}/assignments/tools/",
            "knowledge-assignments": f"/admin/agents/agent/{a}/assignments/knowledge/",
            "guardrail-assignments": f"/admin/agents/agent/{a}/assignments/guardrails/",
            "tool-registry": "/admin/tools/tool/",
            "tool-form": f"/admin/tools/tool/{self.tool.pk}/change/",
            "tool-test": f"/admin/tools/tool/{self.tool.pk}/test/",
            "knowledge-bases": "/admin/knowledge/knowledgebase/",
            "knowledge-base-settings": f"/admin/knowledge/knowledgebase/{self.kb.pk}/change/",
            "knowledge-base": f"/admin/knowledge/knowledgebase/{self.kb.pk}/documents/",
            "documents": "/admin/knowledge/document/",
            "document": f"/admin/knowledge/document/{self.document.pk}/change/",
            "retrieval-tester": f"/admin/knowledge/knowledgebase/search/?query=reverse+charge+{IMG}&top_k=5",
            "guardrails": "/admin/guardrails/guardrail/",
            "guardrail-form": f"/admin/guardrails/guardrail/{self.guardrail.pk}/change/",
            "guardrail-test": f"/admin/guardrails/guardrail/{self.guardrail.pk}/test/",
            "executions": "/admin/agents/execution/",
            "execution": f"/admin/agents/execution/{self.execution.pk}/change/",
            "feedback": "/admin/agents/feedback/",
            "learning-examples": "/admin/agents/learningexample/",
            "learning-example": f"/admin/agents/learningexample/{self.example.pk}/change/",
            "providers": "/admin/agents/modelprovider/",
            "provider": f"/admin/agents/modelprovider/{self.provider.pk}/change/",
            "members": "/admin/tenancy/membership/",
            "api-keys": "/admin/tenancy/apikey/",
            "api-key": f"/admin/tenancy/apikey/{self.api_key.pk}/change/",
            "organization": f"/admin/tenancy/organization/{self.org.pk}/change/",
            "audit-log": "/admin/audit/auditevent/",
            "audit-event": f"/admin/audit/auditevent/{self.audit_event.pk}/change/",
            "console": f"/admin/console/?agent={a}",
            # Django's own pages, which name the firm's objects too.
            "tool-delete": f"/admin/tools/tool/{self.tool.pk}/delete/",
            "guardrail-delete": f"/admin/guardrails/guardrail/{self.guardrail.pk}/delete/",
            "knowledge-base-delete": f"/admin/knowledge/knowledgebase/{self.kb.pk}/delete/",
            "provider-delete": f"/admin/agents/modelprovider/{self.provider.pk}/delete/",
            "tool-history": f"/admin/tools/tool/{self.tool.pk}/history/",
        }
        return pages


def user_content_problems(html: str, token: str) -> tuple[list[str], int]:
    """What on a rendered page could let user content act, and how many text nodes of its content
    (``#content``, or the whole fragment) hold a payload.

    - no element has an event-handler attribute, and no payload element (``img``, a form posting
      to the membership page) exists;
    - every element that issues an htmx request carries the page's token and is not inside an
      hx-disable container;
    - every text node holding a payload is inside an hx-disable container (or an element whose
      content the HTML parser only ever reads as text)."""
    problems: list[str] = []
    if token:
        problems += (
            []
            if f'<meta name="pg-htmx" content="{token}">' in html or "<head" not in html
            else ["no token meta"]
        )
    for raw in (HTMX_DIV, IMG, FORM, SHORT):
        if raw in html:
            problems.append(f"raw payload in the page: {raw[:40]}")
    soup = BeautifulSoup(html, "html.parser")
    for el in soup.find_all(True):
        if any(a.startswith("on") for a in el.attrs):
            problems.append(f"event handler on <{el.name}>")
        if el.name == "img" and el.get("src") == "x" or el.name == "form" and el.get("action") == ADD_OWNER:
            problems.append(f"payload element <{el.name}>")
        if any(el.has_attr(v) or el.has_attr(f"data-{v}") for v in HX_VERBS):
            if el.get("data-pg-htmx") != token or not token:
                problems.append(f"htmx element without the page token: {str(el)[:120]}")
            if el.find_parent(attrs={"hx-disable": True}):
                problems.append(f"htmx element inside user content: {str(el)[:120]}")
    shown = 0
    content = soup.find(id="content")  # a page's own content (the header shows the firm's name)
    for text in soup.find_all(string=lambda s: any(m in s for m in MARKERS)):
        parent = text.parent
        if content is None or content in text.parents:
            shown += 1
        if parent is not None and parent.name in TEXT_ONLY:
            continue
        if parent is None or not (
            parent.has_attr("hx-disable") or parent.find_parent(attrs={"hx-disable": True})
        ):
            where = parent.name if parent is not None else "?"
            problems.append(f"user content outside hx-disable in <{where}>: {text.strip()[:60]!r}")
    return problems, shown


@pytest.fixture
def poisoned(org, owner):
    return PoisonedWorld(org, owner)


def session_token(client) -> str:
    return htmx_token(SimpleNamespace(session=client.session))


#: Pages where the firm's text must be seen (as text): a check that sees nothing proves nothing.
MUST_SHOW = {
    "agent-detail", "agent-settings", "persona-versions", "persona-diff", "persona-editor", "tool-assignments",
    "tool-form", "tool-test", "knowledge-base", "document", "retrieval-tester", "guardrail-form", "execution",
    "learning-example", "audit-event", "console", "agent-registry-search",
}  # fmt: skip


def test_every_page_shows_the_firms_markup_as_inert_text(poisoned, owner):
    """Every staff page of a firm whose texts are all markup: the markup is text, inside
    hx-disable containers, and only the product's own elements (with the token) issue requests."""
    from prisma_glow.tenancy.models import Membership

    client = login(owner)
    # The console shows the user's own turns: one run with a hostile question.
    client.post("/admin/console/run/", {"agent": poisoned.agent.pk, "message": LONG})
    token = session_token(client)
    assert len(token) == 32
    members_before = Membership.objects.count()
    failures, shown_on = {}, set()
    for name, url in poisoned.pages().items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        problems, shown = user_content_problems(response.content.decode(), token)
        if problems:
            failures[name] = problems
        if shown:
            shown_on.add(name)
    assert failures == {}
    assert MUST_SHOW - shown_on == set()
    assert Membership.objects.count() == members_before


def test_htmx_fragments_show_the_firms_markup_as_inert_text(poisoned, owner):
    """The fragments htmx swaps in (results of the testers, the diff, the lists that refresh) keep
    user content inert too."""
    client = login(owner)
    token = session_token(client)
    htmx = {"HX-Request": "true"}
    a = poisoned.agent.pk
    fragments = {
        "persona-diff": client.get(f"/admin/agents/agent/{a}/personas/?a=1&b=2", headers=htmx),
        "persona-preview": client.post(
            f"/admin/agents/agent/{a}/personas/preview/",
            {
                "persona_name": SHORT,
                "system_prompt": LONG,
                "tone": IMG,
                "language": "en",
                "temperature": "0.2",
            },
            headers=htmx,
        ),
        "retrieval": client.get(
            "/admin/knowledge/knowledgebase/search/",
            {"query": f"reverse charge {IMG}", "top_k": 5},
            headers=htmx,
        ),
        "documents": client.get(f"/admin/knowledge/knowledgebase/{poisoned.kb.pk}/documents/", headers=htmx),
        "document-status": client.get(
            f"/admin/knowledge/document/{poisoned.document.pk}/change/", headers=htmx
        ),
        "tool-run": client.post(
            f"/admin/tools/tool/{poisoned.tool.pk}/test/", {"raw_json": f'{{"net": "{IMG}"}}'}, headers=htmx
        ),
        "guardrail-verdict": client.post(
            f"/admin/guardrails/guardrail/{poisoned.guardrail.pk}/test/",
            {"text": f"{LONG} forbidden", "stage": "input"},
            headers=htmx,
        ),
        "assignments": client.post(
            f"/admin/agents/agent/{a}/assignments/tools/", {"action": "add", "target": "999999"}, headers=htmx
        ),
    }
    failures = {}
    for name, response in fragments.items():
        html = response.content.decode()
        assert "<html" not in html, name
        problems, shown = user_content_problems(html, token)
        if problems:
            failures[name] = problems
        if not shown and name not in {"documents", "document-status", "assignments"}:
            failures[name] = ["the payload is not shown"]
    assert failures == {}


def test_the_htmx_token_belongs_to_the_session(owner, editor):
    """Each session has its own token (32 hex digits), the same on every page of the session;
    without a session there is none, and admin_ui.js then trusts no element."""
    first, second = login(owner), login(editor)
    token = session_token(first)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert session_token(first) == token != session_token(second)
    assert token != first.session.session_key
    assert htmx_token(SimpleNamespace()) == "" == htmx_token(None)
    page = first.get("/admin/").content.decode()
    assert f'<meta name="pg-htmx" content="{token}">' in page
    assert (
        f'<meta name="pg-htmx" content="{session_token(second)}">' in second.get("/admin/").content.decode()
    )


def test_the_checker_sees_an_unprotected_payload(owner, org):
    """The page check is not blind: raw markup, an htmx element without the token or inside user
    content, and user text outside hx-disable are all reported."""
    token = "t" * 32
    assert user_content_problems(f"<p>{HTMX_DIV}</p>", token)[0]
    assert user_content_problems(f"<p>{IMG}</p>", token)[0]
    escaped = HTMX_DIV.replace("<", "&lt;").replace(">", "&gt;")
    problems, shown = user_content_problems(f"<p>{escaped}</p>", token)
    assert shown == 1 and problems == [f"user content outside hx-disable in <p>: {HTMX_DIV[:60]!r}"]
    assert user_content_problems(f"<p hx-disable><span>{escaped}</span></p>", token) == ([], 1)
    assert user_content_problems('<form hx-post="/x">', token)[0]
    assert user_content_problems('<form data-pg-htmx="forged" hx-post="/x">', token)[0]
    assert user_content_problems(f'<div hx-disable><form data-pg-htmx="{token}" hx-post="/x"></div>', token)[
        0
    ]
    assert user_content_problems(f'<form data-pg-htmx="{token}" hx-post="/x">', token) == ([], 0)
