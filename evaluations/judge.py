"""The judge of ``rubric`` checks: a model, through the agents' provider machinery, grades an answer
against a rubric and returns a verdict with its reasoning.

The judge is the suite's ``judge_provider`` (else the organisation's default provider) with the suite's
``judge_model`` (else the provider's default model). The offline engine cannot grade: without a remote
provider, or when the call fails or the model's answer is not a verdict, the check is "not judged"
with that reason, never a verdict the model did not give. The question and the answer are sent with
every client identifier masked (``agents.privacy.shown_text``), as a person without that right sees them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agents.models import ModelProvider, ProviderKind
from agents.runtime.errors import ProviderError
from agents.runtime.providers import ModelRequest, get_provider

#: At most this many characters of the question and of the answer are sent to the judge.
MAX_SENT = 8000
JUDGE_MAX_TOKENS = 600

SYSTEM_PROMPT = (
    "You are an exacting reviewer grading an assistant's answer against a rubric. Read the question, "
    "the answer and the rubric. Reply with one JSON object and nothing else: "
    '{"verdict": "pass" or "fail", "reasoning": "one to three sentences naming what the answer does '
    'or does not satisfy"}.'
)

_FENCE_RE = re.compile(r"```(?:json)?\s*(?P<body>\{.*?\})\s*```", re.S)
_OBJECT_RE = re.compile(r"\{.*\}", re.S)


@dataclass(frozen=True)
class Judgement:
    """``judged`` False: no verdict (``passed`` None), ``reason`` says why. Otherwise the model's
    verdict and its ``reasoning``."""

    judged: bool
    passed: bool | None
    reason: str
    reasoning: str = ""
    model: str = ""


def judge_provider_for(suite) -> ModelProvider | None:
    """The provider that grades ``suite``'s rubrics: its own, else its organisation's default."""
    if suite.judge_provider_id:
        return suite.judge_provider
    return ModelProvider.objects.filter(organization_id=suite.organization_id, is_default=True).first()


def parse_verdict(content: str) -> tuple[bool, str] | None:
    """``(passed, reasoning)`` from the judge's reply (a JSON object, in a code fence or amid text),
    None when it holds no verdict."""
    text = (content or "").strip()
    candidates = [text]
    fenced = _FENCE_RE.search(text)
    if fenced:
        candidates.insert(0, fenced.group("body"))
    found = _OBJECT_RE.search(text)
    if found:
        candidates.append(found.group(0))
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        verdict = str(data.get("verdict", "")).strip().casefold()
        if verdict in ("pass", "passed", "fail", "failed"):
            reasoning = data.get("reasoning")
            return verdict.startswith("pass"), str(reasoning or "").strip()[:2000]
    return None


class Judge:
    """One suite's judge, looked up once per run."""

    def __init__(self, suite):
        self.row = judge_provider_for(suite)
        self.model = suite.judge_model or (self.row.default_model if self.row else "")

    @property
    def unavailable(self) -> str:
        """Why this judge cannot grade ("" when it can)."""
        if self.row is None:
            return (
                "Not judged: no judge model. Choose a judge provider on the suite or make a remote "
                "provider the organisation's default; the offline engine cannot grade a rubric."
            )
        if self.row.kind != ProviderKind.OPENAI_COMPATIBLE:
            return (
                f"Not judged: the judge provider '{self.row.name}' is the offline engine, which cannot "
                "grade a rubric. Choose a remote provider as the suite's judge."
            )
        return ""

    def grade(self, *, rubric: str, question: str, answer: str) -> Judgement:
        if self.unavailable:
            return Judgement(False, None, self.unavailable)
        request = ModelRequest(
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": (
                        f"Question:\n{question[:MAX_SENT]}\n\nAnswer:\n{answer[:MAX_SENT]}\n\n"
                        f"Rubric:\n{rubric}"
                    ),
                },
            ],
            model=self.model,
            temperature=0,
            max_tokens=JUDGE_MAX_TOKENS,
            timeout=float(self.row.timeout_seconds),
        )
        try:
            response = get_provider(self.row).complete(request)
        except ProviderError as exc:
            return Judgement(False, None, f"Not judged: the judge model could not be reached ({exc.reason}).")
        parsed = parse_verdict(response.content)
        if parsed is None:
            excerpt = " ".join((response.content or "").split())[:200] or "an empty reply"
            return Judgement(False, None, f"Not judged: the judge model's reply held no verdict ({excerpt}).")
        passed, reasoning = parsed
        model = response.model or self.model
        reason = f"The judge ({model or self.row.name}) {'passed' if passed else 'failed'} the answer."
        return Judgement(True, passed, reason, reasoning=reasoning, model=model)
