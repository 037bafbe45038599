"""Citations numbered 1…n in order of appearance (``agents.runtime.citations``), alone and in runs
against a real local OpenAI-compatible server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug import Response

from agents.runtime import execute, execute_stream
from agents.runtime.citations import Renumberer, renumber
from guardrails.checks.citation_required import marker_numbers
from knowledge.search import Passage
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401
from tests.factories import release_now

PASSAGES = [
    Passage(
        chunk_id=100 + i,
        document_id=10 + i,
        document_title=f"Note {i}",
        knowledge_base_id=1,
        ordinal=i,
        text=f"Passage {i}.",
        score=1 / i,
        page=i,
        heading_path=f"Part {i}",
    )
    for i in range(1, 6)
]
ANSWER = (
    "The customer accounts for the VAT [2]. The invoice says 'Reverse charge' [4][2]. "
    "Keep it ten years [source 5]; see also [2, 3] and [3-5]. A note the model invented [9], [0]."
)


def sentences(text):
    """The answer cut after each sentence's punctuation and citations, as a sentence-by-sentence
    stream would feed it."""
    out, rest = [], text
    for end in (". ", "; ", ". "):
        at = rest.index(end) + len(end)
        out.append(rest[:at])
        rest = rest[at:]
    return [*out, rest]


def test_whole_answer_is_numbered_in_order_of_appearance():
    """[2] … [4] … [5] … [3] becomes [1] … [2] … [3] … [4]; each entry names the passage cited."""
    text, cited = renumber(ANSWER, PASSAGES)
    assert text == (
        "The customer accounts for the VAT [1]. The invoice says 'Reverse charge' [2][1]. "
        "Keep it ten years [3]; see also [1, 4] and [2-4]. A note the model invented [9], [0]."
    )
    assert [(c["n"], c["passage"], c["chunk_id"]) for c in cited] == [
        (1, 2, 102),
        (2, 4, 104),
        (3, 5, 105),
        (4, 3, 103),
    ]
    assert cited[0]["citation"] == "Note 2, p. 2, § Part 2" and cited[0]["score"] == 0.5


def test_only_the_second_passage_cited_becomes_one():
    text, cited = renumber("Only this [2].", PASSAGES)
    assert text == "Only this [1]." and [(c["n"], c["passage"]) for c in cited] == [(1, 2)]


def test_numbers_without_a_passage_are_left_as_written():
    """[9] and [0] refer to no passage: kept (the reader and the guardrail see them), never listed."""
    text, cited = renumber("Invented [9], [0] and [4, 9].", PASSAGES)
    assert text == "Invented [9], [0] and [1, 9]." and [c["passage"] for c in cited] == [4]
    assert renumber("No passages [1].", []) == ("No passages [1].", [])
    assert renumber("No citation at all. [Reverse charge] [EMAIL_1]", PASSAGES)[0] == (
        "No citation at all. [Reverse charge] [EMAIL_1]"
    )


@pytest.mark.parametrize(
    ("group", "numbers"),
    [
        ("2", [2]),
        ("2, 4", [2, 4]),
        ("4,2", [4, 2]),
        ("2-4", [2, 3, 4]),
        ("4-2", [4, 2]),
        ("1 – 3; 5", [1, 2, 3, 5]),
        ("2-2", [2]),
        ("1-99", [1, 99]),
        ("3, 3", [3]),
        ("0, 7", [0, 7]),
    ],
)
def test_a_markers_numbers_in_the_order_written(group, numbers):
    """One reading of a marker, shared by the renumbering and the citations-required guardrail: in
    the order written (the renumbering's order of appearance), each once, a short range expanded."""
    assert marker_numbers(group) == numbers


def test_sentence_by_sentence_gives_the_whole_answers_result():
    renumberer = Renumberer(PASSAGES)
    shown = "".join(renumberer.feed(s) for s in sentences(ANSWER)) + renumberer.flush()
    assert (shown, renumberer.citations()) == renumber(ANSWER, PASSAGES)


def test_a_marker_cut_between_pieces_is_held_until_whole():
    renumberer = Renumberer(PASSAGES)
    assert renumberer.feed("The VAT [") == "The VAT "
    assert renumberer.feed("so") == ""
    assert renumberer.feed("urce 3] is due. [") == "[1] is due. "
    assert renumberer.flush() == "["  # an opening bracket never closed is given back as it was
    assert [c["passage"] for c in renumberer.citations()] == [3]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(ANSWER)), max_size=12))
def test_any_cut_into_pieces_gives_the_whole_answers_result(cuts):
    """However the answer is cut (provider chunks), the text shown and the citations are the same."""
    bounds = [0, *sorted(cuts), len(ANSWER)]
    renumberer = Renumberer(PASSAGES)
    shown = "".join(renumberer.feed(ANSWER[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    assert (shown + renumberer.flush(), renumberer.citations()) == renumber(ANSWER, PASSAGES)


# --- In runs against a real local OpenAI-compatible server ------------------------------------------


@pytest.mark.django_db
def test_a_model_citing_only_the_second_passage_shows_one(remote):  # noqa: F811
    """The model cites "[2]" only: the stored answer says "[1]" and citation 1 is passage 2. The
    citations-required guardrail (block) is satisfied."""
    agent, model = remote(completion("The customer accounts for the VAT [2]."), guards=None)
    from tests.agents.runtime.conftest import guardrail

    guardrail(
        agent, 0, name="Cite", kind="citation_required", action="block",
        applies_to_input=False, applies_to_output=True, config={"min_citations": 1},
    )  # fmt: skip
    execution = execute(agent, "Who accounts for the VAT on cross-border B2B services?", source="api")
    assert execution.status == "completed", execution.error
    assert execution.output == "The customer accounts for the VAT [1]."
    retrieved = execution.steps.get(kind="retrieval").output["passages"]
    assert len(retrieved) >= 2 and "[2] (" in model.bodies[0]["messages"][-1]["content"]
    assert [(c["n"], c["passage"], c["chunk_id"]) for c in execution.citations] == [
        (1, 2, retrieved[1]["chunk_id"])
    ]


@pytest.mark.django_db
def test_a_citation_to_no_passage_is_kept_and_blocked_by_the_guardrail(remote):  # noqa: F811
    agent, _ = remote(completion("The customer accounts for the VAT [7]."), guards=None)
    from tests.agents.runtime.conftest import guardrail

    guardrail(
        agent, 0, name="Cite", kind="citation_required", action="block",
        applies_to_input=False, applies_to_output=True, config={"min_citations": 1},
    )  # fmt: skip
    release_now(agent)
    execution = execute(agent, "Who accounts for the VAT on cross-border B2B services?", source="api")
    assert execution.status == "blocked" and "7 refer to no retrieved passage" in execution.error


@pytest.mark.django_db
def test_live_deltas_are_renumbered_as_the_stored_answer(remote):  # noqa: F811
    """Streamed live (no output guardrail that may block), a marker split across provider chunks
    reaches the client whole and renumbered, and the deltas add up to the stored answer."""
    stream = Response(
        chunk({"role": "assistant", "content": "The customer accounts [2"})
        + chunk({"content": "] for the VAT [1"})
        + chunk({"content": "]. Again [2]; not [3]."})
        + chunk(finish="stop")
        + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )
    agent, _ = remote(stream, guards=None)
    events = list(
        execute_stream(agent, "Who accounts for the VAT on cross-border B2B services?", source="api")
    )
    deltas = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    final = events[-1]["data"]
    assert final["status"] == "completed", final["error"]
    assert deltas == final["output"] == "The customer accounts [1] for the VAT [2]. Again [1]; not [3]."
    assert [(c["n"], c["passage"]) for c in final["citations"]] == [(1, 2), (2, 1)]
    assert len(final["steps"][0]["output"]["passages"]) == 2  # so [3] refers to no passage
