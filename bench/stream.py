"""Live-streaming benchmark: how late each sentence of a streamed answer reaches the client.

Run: ``.venv/bin/python bench/stream.py [--runs 20] [--seconds 3]``

Without ``DATABASE_URL`` it starts a throwaway PostgreSQL cluster (``scripts/pg-cluster``), migrates
it, seeds the demo firm (``seed_demo``: knowledge bases with the demo guidance, the VAT adviser (demo)) and
removes it afterwards. The VAT adviser gets every demo guardrail (PII redaction, prompt injection,
citations required, disclaimer, blocked topics; PII redaction and blocked topics also on the answer,
so that each sentence is checked before it is sent) and a provider on a local OpenAI-compatible
server (a thread) that streams a ~``--seconds`` s answer token by token (each word with the space
before it, as real models do, so a sentence is only known to be over when the next token arrives).
The client is a real HTTP client (httpx2, the project's) reading ``POST /api/v1/agents/{id}/execute/?stream=true``
from Django served by a WSGI server thread.

Prints p50 / p95 of (time a sentence's delta reaches the client − time the provider sent the
sentence's last token) and of (the stream's end at the client − the provider's end). Targets:
p95 ≤ 300 ms and ≤ 50 ms.

``DATABASE_URL=sqlite:///…`` runs it on SQLite.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from execute import percentile, start_cluster, stop_cluster  # noqa: E402  (bench/execute.py)

QUESTION = "Who accounts for the VAT on cross-border B2B services?"
#: The answer, one sentence an item; abbreviations and numbers that must not end a sentence included.
SENTENCES = [
    "For B2B services supplied across EU borders the reverse charge applies [1].",
    " The customer, e.g. a German GmbH, accounts for the VAT in its own Member State [1].",
    " In Germany this follows from § 13b UStG and Art. 196 of the VAT Directive [1].",
    " On an invoice of 1.000,00 EUR net the customer declares 19 % VAT, i.e. 190,00 EUR [1].",
    " The supplier charges no VAT and writes 'Reverse charge' on the invoice [1].",
    " Both VAT identification numbers must appear on it, and the supply goes in the recapitulative statement [1].",
]
TARGET_SENTENCE_P95_MS = 300.0
TARGET_END_MS = 50.0


class StreamingModel:
    """A local OpenAI-compatible chat completions endpoint (WSGI) streaming ``SENTENCES`` over
    ``seconds``; records when each sentence's last token and the stream's end were sent."""

    def __init__(self, seconds: float):
        self.tokens = [re.findall(r"\s*\S+", s) for s in SENTENCES]
        self.delay = seconds / sum(len(t) for t in self.tokens)
        self.sentence_sent: list[float] = []
        self.finished = 0.0

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if not body.get("stream"):
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error": {"message": "this server only streams"}}']
        start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
        return self.stream()

    def stream(self):
        self.sentence_sent = []
        for tokens in self.tokens:
            for token in tokens:
                time.sleep(self.delay)
                yield self.chunk({"content": token})
            self.sentence_sent.append(time.monotonic())
        yield self.chunk({}, finish="stop")
        yield b"data: [DONE]\n\n"
        self.finished = time.monotonic()

    @staticmethod
    def chunk(delta: dict, finish: str | None = None) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "bench",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return f"data: {json.dumps(body)}\n\n".encode()


def serve(app) -> tuple[str, object]:
    """``app`` on a threaded WSGI server on a free local port: (base URL, server)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def setup(model_url: str):
    """The demo firm's VAT adviser on the local model with every demo guardrail; an API key."""
    from django.core.management import call_command

    from agents.management.commands.seed_demo import GUARDRAILS
    from agents.models import Agent, AgentGuardrail, ModelProvider
    from guardrails.models import Guardrail
    from prisma_glow.tenancy.services import api_key_create

    call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    agent = Agent.objects.select_related("organization").get(
        organization__slug="demo", slug="vat-adviser-demo"
    )
    org = agent.organization
    provider = ModelProvider.objects.create(
        organization=org, name="Bench streaming model", kind="openai_compatible", base_url=f"{model_url}/v1",
        default_model="bench", timeout_seconds=30, max_retries=0,
    )  # fmt: skip
    agent.provider = provider
    agent.save(update_fields=["provider"])
    for order, (name, *_rest) in enumerate(GUARDRAILS):
        guardrail = Guardrail.objects.get(organization=org, name=name)
        if guardrail.kind in ("pii", "blocked_topics"):
            guardrail.applies_to_output = True
            guardrail.save(update_fields=["applies_to_output"])
        AgentGuardrail.objects.update_or_create(agent=agent, guardrail=guardrail, defaults={"order": order})
    _, key = api_key_create(organization=org, actor=None, name="bench stream", scopes=["read", "execute"])
    return agent, key


def one_run(client, url: str, key: str, model: StreamingModel) -> tuple[list[float], float, dict]:
    """One streamed run: (per-sentence lateness in ms, end lateness in ms, the execution event)."""
    arrivals: list[float] = []
    execution: dict = {}
    ended = 0.0
    buffer = ""
    with client.stream(
        "POST", url, json={"input": QUESTION},
        headers={"Authorization": f"Api-Key {key}", "Accept": "text/event-stream"},
    ) as response:  # fmt: skip
        response.raise_for_status()
        for text in response.iter_text():
            buffer += text
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                lines = dict(line.split(": ", 1) for line in block.splitlines())
                if lines["event"] == "delta":
                    arrivals.append(time.monotonic())
                elif lines["event"] == "execution":
                    execution = json.loads(lines["data"])
                    ended = time.monotonic()
    sentences = [(a - s) * 1000 for a, s in zip(arrivals, model.sentence_sent, strict=False)]
    return sentences, (ended - model.finished) * 1000, execution


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    cluster, url = start_cluster()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prisma_glow.settings")
    os.environ.setdefault("PRISMA_GLOW_VAR_DIR", tempfile.mkdtemp(prefix="bench-stream-var-"))
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")  # plain HTTP on the loopback
    os.environ.setdefault("PRISMA_GLOW_API_EXECUTE_RATE", "")
    model = StreamingModel(args.seconds)
    model_url, model_server = serve(model)
    os.environ["PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS"] = model_url.removeprefix("http://")
    app_server = None
    try:
        import django

        django.setup()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("django.tasks").setLevel(logging.WARNING)
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        import httpx2 as httpx
        from django.core.management import call_command
        from django.core.wsgi import get_wsgi_application
        from django.db import connection

        print(f"Database: {connection.vendor} ({'throwaway cluster' if cluster else 'DATABASE_URL'})")
        call_command("migrate", verbosity=0)
        print("Seeding the demo firm…", flush=True)
        agent, key = setup(model_url)
        connection.close()  # the WSGI server's threads open their own connections
        app_url, app_server = serve(get_wsgi_application())
        execute_url = f"{app_url}/api/v1/agents/{agent.pk}/execute/?stream=true"
        words = sum(len(t) for t in model.tokens)
        print(
            f"Streaming {len(SENTENCES)} sentences ({words} tokens, {model.delay * 1000:.0f} ms apart, "
            f"{args.seconds:g} s) × {args.runs} runs, every demo guardrail assigned…",
            flush=True,
        )
        late: list[float] = []
        ends: list[float] = []
        with httpx.Client(timeout=60) as client:
            one_run(client, execute_url, key, model)  # warm-up: loads the agent's configuration
            for _ in range(args.runs):
                sentences, end, execution = one_run(client, execute_url, key, model)
                if execution.get("status") != "completed" or len(sentences) < len(SENTENCES):
                    print(
                        f"Run did not complete as expected: {execution.get('status')} {execution.get('error')}"
                    )
                    return 1
                late += sentences
                ends.append(end)
        p50, p95 = percentile(late, 50), percentile(late, 95)
        e50, e95 = percentile(ends, 50), percentile(ends, 95)
        print(f"Sentence reaches the client after the provider sent it: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
              f"(max {max(late):.1f} ms; one token is {model.delay * 1000:.0f} ms)")  # fmt: skip
        print(
            f"Stream ends after the provider's end: p50 {e50:.1f} ms, p95 {e95:.1f} ms (max {max(ends):.1f} ms)"
        )
        ok = p95 <= TARGET_SENTENCE_P95_MS and e95 <= TARGET_END_MS
        print(
            f"Targets p95 ≤ {TARGET_SENTENCE_P95_MS:g} ms per sentence, ≤ {TARGET_END_MS:g} ms at the end: "
            f"{'met' if ok else 'NOT met'}"
        )
        return 0 if ok else 1
    finally:
        from django.db import connections

        if app_server is not None:
            app_server.shutdown()
        model_server.shutdown()
        connections.close_all()
        stop_cluster(cluster)


if __name__ == "__main__":
    sys.exit(main())
