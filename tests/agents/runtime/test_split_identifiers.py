"""An identifier that a document's chunking could cut in two reaches the provider by no part.

The PII guardrail screens each retrieved passage alone, so an IBAN cut between two chunks ("DE89" in
one, "3704 0044 0532 0130 00" after the overlap in the next) would pass in halves. A real local
OpenAI-compatible server records every request body; the document is ingested by the real pipeline
(parsing child, chunk size 200, overlap 60 — the old chunker cut this IBAN after "DE89"). No group of
the IBAN (its country and check digits DE89, its middle groups 3704 0044 0532 0130) may appear in any
body, separators and line breaks ignored: with ``redact`` the whole IBAN goes as a placeholder and the
requester sees it back; with ``block`` the passages holding it are withheld. Documents chunked before
are found and re-indexed by ``manage.py reindex_split_identifiers`` — before that they leak, which
shows the test reads the bodies it should.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command

from agents.runtime import execute
from knowledge import services
from knowledge.ingest import Block, chunk_blocks
from tests.agents.runtime.conftest import guardrail
from tests.agents.runtime.test_openai_provider import completion, remote  # noqa: F401 (the fixture)
from tests.factories import AgentKnowledgeFactory, ChunkFactory, KnowledgeBaseFactory, release_now

pytestmark = pytest.mark.django_db

IBAN = "DE89 3704 0044 0532 0130 00"
GROUPS = ["DE89", "3704", "0044", "0532", "0130"]
#: One long sentence: the old chunker cut it at the last space before 140 characters (chunk size 200
#: less the overlap of 60), after "0044" — the IBAN starts at 124.
LETTER = (
    "To the refund account of the supplier as agreed in the letter of the third of May with the supplier "
    "namely the account IBAN "
    + IBAN
    + " which is the refund account of the supplier for every refund. "
    + "The supplier confirmed the refund account again in writing, and the refund is paid there. " * 3
)
QUESTION = "Which refund account does the supplier use?"
PLACEHOLDER = re.compile(r"\[[A-Z]+_\d+\]")


def _fragments(bodies) -> list[str]:
    """The IBAN's groups found in the request bodies, with whitespace (and escaped line breaks) removed."""
    sent = re.sub(r"\s+|\\n", "", json.dumps(bodies, ensure_ascii=False))
    return [group for group in GROUPS if group in sent]


def _echo(body):
    seen = list(dict.fromkeys(PLACEHOLDER.findall(json.dumps(body["messages"]))))
    return completion("The refund account is " + " ".join(seen) + " [1].")


@pytest.fixture
def client_files(org, settings, tmp_path):
    """The firm's client files, chunked at 200 characters with an overlap of 60."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    return KnowledgeBaseFactory(organization=org, name="Client files", chunk_size=200, chunk_overlap=60)


@pytest.fixture
def run(remote, client_files):  # noqa: F811 (the imported fixture)
    """``run(action)`` → (execution, the bodies its requests sent): the question asked of an agent whose
    one guardrail is a PII check with ``action``, retrieving from the client files (and the VAT guidance)."""
    agents = {}

    def run(action):
        if action not in agents:
            agent, model = remote(_echo, guards=None, agent_fields={"name": f"Adviser {action}"})
            AgentKnowledgeFactory(agent=agent, knowledge_base=client_files, top_k=8)
            guardrail(agent, 0, name=f"PII {action}", kind="pii", action=action, config={})
            release_now(agent)
            agents[action] = agent, model
        agent, model = agents[action]
        sent = len(model.bodies)
        return execute(agent, QUESTION, source="api"), model.bodies[sent:]

    return run


def _ingest(knowledge_base, editor):
    document = services.document_create(knowledge_base=knowledge_base, actor=editor, text=LETTER)
    assert document.status == "ready", document.error
    return document


def test_the_old_chunker_cut_this_iban_in_two():
    old = [c.text for c in chunk_blocks([Block(LETTER.strip(), 0, None)], size=200, overlap=60)]
    assert not any(IBAN in text for text in old)
    assert any(text.endswith("IBAN DE89 3704 0044") for text in old)


def test_redact_sends_the_whole_iban_as_a_placeholder_and_no_part_of_it(run, client_files, editor):
    _ingest(client_files, editor)
    execution, bodies = run("redact")
    assert execution.status == "completed", execution.error
    passages = bodies[0]["messages"][-1]["content"]
    assert "refund account" in passages and "[IBAN_1]" in passages
    assert _fragments(bodies) == []
    assert IBAN in execution.output  # the requester sees it back


def test_block_withholds_the_passages_holding_the_iban_and_sends_no_part_of_it(run, client_files, editor):
    document = _ingest(client_files, editor)
    holding = document.chunks.filter(text__contains=IBAN).count()
    assert holding >= 1
    execution, bodies = run("block")
    assert execution.status == "completed", execution.error
    assert _fragments(bodies) == []
    assert "refund" in bodies[0]["messages"][-1]["content"]  # the passages without it were sent
    step = execution.steps.get(kind="guardrail", input__part="retrieved passages")
    assert step.status == "dropped" and len(step.output["withheld"]) == holding


def test_documents_chunked_before_leak_until_reindexed(run, client_files, editor):
    """Chunks made by the old chunker send the IBAN in parts past the guardrail; after
    ``reindex_split_identifiers`` the same run sends none."""
    document = _ingest(client_files, editor)
    old = [c.text for c in chunk_blocks([Block(LETTER.strip(), 0, None)], size=200, overlap=60)]
    document.chunks.all().delete()
    for ordinal, text in enumerate(old):
        ChunkFactory(document=document, ordinal=ordinal, text=text, page=None)
    type(document).objects.filter(pk=document.pk).update(chunk_count=len(old))

    execution, bodies = run("redact")
    assert execution.status == "completed", execution.error
    assert _fragments(bodies)  # the defect: parts of the IBAN went as typed

    call_command("reindex_split_identifiers", stdout=io.StringIO())
    execution, bodies = run("redact")
    assert execution.status == "completed", execution.error
    assert _fragments(bodies) == []
    assert IBAN in execution.output
