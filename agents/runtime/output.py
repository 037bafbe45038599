"""The live answer (pipeline step 6 while streaming): sentence by sentence, each checked before it is
shown.

``OutputGate`` receives the provider's text as it arrives, splits it into sentences
(``sentences.SentenceSplitter``) and passes each completed sentence through an ordered list of
transforms before it is released as a ``delta``:

1. ``SentenceChecks`` — the output guardrails that can decide on one sentence (blocked topics,
   keywords, regex, PII: ``guardrails.engine.evaluate(..., sentence=True)``). ``redact`` → the
   sentence is released with placeholders; ``block`` → nothing of it is released, the gate is
   closed and the caller sends a ``retract`` event with the reason;
2. ``Renumber`` — citations numbered 1…n in order of appearance (``citations.Renumberer``), as the
   recorded answer's are;
3. ``Restore`` — the requester's own values put back in place of their placeholders.

A transform is any object with ``sentence(text) -> text`` that may raise ``SentenceBlocked``, and
optionally ``flush() -> text`` for what it held back (a citation marker cut between two sentences),
called once the provider has finished and passed through the transforms after it. Checks that need the whole answer (citations required, JSON schema, maximum
length, disclaimers) still run once at the end on the whole answer, exactly as for a run that does
not stream: the record (answer, guardrail steps, status) is the same whichever way the run was
asked for. The gate only decides what the client may see before that.
"""

from __future__ import annotations

from collections.abc import Iterable
from os.path import commonprefix
from typing import Protocol

from agents.runtime.sentences import SentenceSplitter
from guardrails.engine import evaluate, restore, sentence_wise


class SentenceBlocked(Exception):
    """A sentence check blocked the answer; ``reason`` is what the client is told."""

    def __init__(self, reason: str, verdict=None):
        self.reason = reason
        self.verdict = verdict  # the guardrails' verdict on the sentence (``guardrails.engine.Verdict``)
        super().__init__(reason)


class Transform(Protocol):
    def sentence(self, text: str) -> str:
        """The sentence as it may be shown; raises ``SentenceBlocked`` when it may not be."""
        ...


def blocked_reason(verdict) -> str:
    """The sentence recorded (and shown) when a guardrail blocked: which guardrail, and why."""
    blocker = verdict.blocked_by
    if blocker is None:
        return "Blocked by a guardrail."
    message = getattr(blocker, "message", "") or "the check was triggered"
    return f"Blocked by the guardrail '{blocker.name}': {message}"


class SentenceChecks:
    """The output guardrails that decide on one sentence, run on each sentence in turn, with the text
    before it as context: each check reads the model's answer so far (what was checked before and the
    new sentence), so an anchored pattern (``^The customer``), a pattern across two sentences or an
    identifier recognised by the words before it ("by phone:\n030…") is judged as on the whole answer,
    and only what the new sentence adds is released.

    Placeholders are numbered on from the run's mapping as it is when the sentence is checked
    (``redactions`` is the run's own, not a copy: the boundary's sweep of the request and a tool's
    result add to it while the run goes on) and from the placeholders these checks created before, as
    they would be on the whole answer: a placeholder already taken is never given to another value."""

    def __init__(self, guardrails: Iterable, *, redactions: dict[str, str], passages: list):
        self.guardrails = [g for g in guardrails if sentence_wise(g, "output")]
        self.live = redactions
        self.own: dict[str, str] = {}  # placeholders created here: they hide what the model wrote
        self.passages = passages
        self.before = ""  # the model's text checked so far
        self.released = ""  # the same text as these checks released it

    def mapping(self) -> dict[str, str]:
        """The placeholders taken so far: the run's, then those created by these checks."""
        return {**self.live, **self.own}

    def sentence(self, text: str) -> str:
        if not self.guardrails:
            return text
        whole = self.before + text
        if not text.strip():
            self.before, self.released = whole, self.released + text
            return text
        verdict = evaluate(
            self.guardrails,
            whole,
            stage="output",
            context={"redactions": self.mapping(), "passages": self.passages},
            sentence=True,
        )
        if verdict.blocked:
            raise SentenceBlocked(blocked_reason(verdict), verdict)
        for placeholder in verdict.new_redactions:
            self.own[placeholder] = verdict.redactions[placeholder]
        redacted = verdict.redacted_text
        # What was released before is released again by the same checks on the longer text, but for
        # a finding that starts in it and ends in the new sentence (an identifier cut by a line
        # break): its start was shown; the rest is released redacted and the whole answer's record
        # replaces the text at the end (a ``retract`` with the recorded answer).
        kept = len(commonprefix([self.released, redacted]))
        self.before, self.released = whole, redacted
        return redacted[kept:]


class Restore:
    """The requester's values back in place of the placeholders of the run's mapping (the run's own,
    not a copy: a tool result redacted during the run is restored too; placeholders the sentence
    checks create hide what the model produced and are not in it)."""

    def __init__(
        self,
        redactions: dict[str, str],
        *,
        hidden: dict[str, str] | None = None,
        masked: dict[str, str] | None = None,
    ):
        self.redactions = redactions
        self.hidden = hidden if hidden is not None else {}
        #: Placeholders shown in their masked form rather than restored (``Run.shown_values``).
        self.masked = masked if masked is not None else {}

    def sentence(self, text: str) -> str:
        if not self.redactions:
            return text
        # A placeholder the sentence checks created is never the requester's value.
        mapping = {k: v for k, v in self.redactions.items() if k not in self.hidden}
        return restore(text, {**mapping, **self.masked} if self.masked else mapping)


class Renumber:
    """Citation numbers 1…n in order of appearance, sentence by sentence (``citations.Renumberer``)."""

    def __init__(self, renumberer):
        self.renumberer = renumberer

    def sentence(self, text: str) -> str:
        return self.renumberer.feed(text)

    def flush(self) -> str:
        return self.renumberer.flush()


class OutputGate:
    """Provider text in (``feed``, ``flush``), releasable text out. ``shown`` is everything released;
    ``blocked`` the reason once a sentence was blocked (nothing is released after it)."""

    def __init__(self, transforms: list[Transform]):
        self.transforms = transforms
        self.splitter = SentenceSplitter()
        self.shown = ""
        self.fed = ""  # the provider's text as received
        self.blocked: str = ""
        self.verdict = None  # the verdict that blocked, when a sentence check did

    def feed(self, text: str) -> list[str]:
        """The sentences completed by ``text``, each as it may be shown."""
        self.fed += text
        return [piece for piece in map(self._release, self.splitter.feed(text)) if piece]

    def flush(self) -> list[str]:
        """The last sentence, once the provider has finished, then what transforms held back."""
        tail = self.splitter.flush()
        pieces = [self._release(tail)] if tail else []
        for position, transform in enumerate(self.transforms):
            held = transform.flush() if hasattr(transform, "flush") else ""
            if held:
                pieces.append(self._release(held, start=position + 1))
        return [piece for piece in pieces if piece]

    def _release(self, sentence: str, *, start: int = 0) -> str:
        if self.blocked:
            return ""
        try:
            for transform in self.transforms[start:]:
                sentence = transform.sentence(sentence)
        except SentenceBlocked as exc:
            self.blocked, self.verdict = exc.reason, exc.verdict
            return ""
        self.shown += sentence
        return sentence
