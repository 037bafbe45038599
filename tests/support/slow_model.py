"""A local OpenAI-compatible model that streams its answer slowly, and the demo's guardrails: what the
live-streaming tests of the runtime, the API and the console run against."""

from __future__ import annotations

import json
import re
import threading
import time

from werkzeug import Request, Response

from agents.management.commands.seed_demo import GUARDRAILS
from guardrails.models import Guardrail
from guardrails.services import guardrail_create
from tests.factories import AgentGuardrailFactory


def assign_demo_guardrails(agent) -> list[Guardrail]:
    """Every guardrail of the demo firm (``seed_demo``), assigned to ``agent`` in the demo's order."""
    assigned = []
    for order, (name, kind, action, config, description) in enumerate(GUARDRAILS):
        guardrail = Guardrail.objects.filter(organization=agent.organization, name=name).first()
        if guardrail is None:
            guardrail = guardrail_create(
                organization=agent.organization, actor=None, name=name, kind=kind, action=action,
                config=config, description=description,
            )  # fmt: skip
        AgentGuardrailFactory(agent=agent, guardrail=guardrail, order=order)
        assigned.append(guardrail)
    return assigned


def _chunk(content: str | None = None, finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


class SlowModel:
    """Answers every chat completion with ``answer`` (a text, or its sentences as a list): streamed word
    by word, ``delay`` seconds apart when the request asks for a stream, as one completion otherwise.
    Records the request bodies, the time (``time.monotonic``) each sentence's last word was sent and
    when the stream ended. ``cut`` is the pattern of the pieces sent (``re.findall``): a word and the
    space after it unless given.

    ``gated``: the model writes no word of a sentence after the first until the test lets it
    (``proceed()``, once a sentence): a test that proves that a sentence reached the client while the
    model was still writing waits for what it checks instead of racing the model's delays. A gate
    that nobody opens gives way after ``GATE_SECONDS`` and is counted in ``gate_timeouts`` (the
    sentence did not reach the test in time)."""

    GATE_SECONDS = 30.0

    def __init__(
        self, answer: str | list[str], *, delay: float = 0.05, cut: str = r"\S+\s*", gated: bool = False
    ):
        self.sentences = [answer] if isinstance(answer, str) else list(answer)
        self.cut = cut
        self.answer = "".join(self.sentences)
        self.delay = delay
        self.bodies: list[dict] = []
        self.sentence_sent: list[float] = []
        self.finished: float | None = None
        self.gate = threading.Semaphore(0) if gated else None
        self.gate_timeouts = 0

    def proceed(self, sentences: int = 1) -> None:
        """Let a gated model write its next ``sentences``."""
        assert self.gate is not None, "proceed() is for a gated model"
        self.gate.release(sentences)

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        self.bodies.append(body)
        if not body.get("stream"):
            completion = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.answer},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }  # fmt: skip
            return Response(json.dumps(completion), content_type="application/json")
        self.sentence_sent, self.finished = [], None

        def stream():
            yield _chunk("")
            for index, sentence in enumerate(self.sentences):
                if index and self.gate is not None and not self.gate.acquire(timeout=self.GATE_SECONDS):
                    self.gate_timeouts += 1
                for piece in re.findall(self.cut, sentence):
                    time.sleep(self.delay)
                    yield _chunk(piece)
                self.sentence_sent.append(time.monotonic())
            yield _chunk(finish="stop")
            yield "data: [DONE]\n\n"
            self.finished = time.monotonic()

        return Response(stream(), content_type="text/event-stream")


def read_sse(chunks, on_event=None) -> list[tuple[str, dict, float]]:
    """The events of a Server-Sent Events body read as it arrives: (event, data, arrival time).
    ``on_event(event, data)`` is called as each arrives (before the next is read)."""
    events, buffer = [], ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.strip():
                lines = dict(line.split(": ", 1) for line in block.splitlines())
                events.append((lines["event"], json.loads(lines["data"]), time.monotonic()))
                if on_event is not None:
                    on_event(*events[-1][:2])
    return events
