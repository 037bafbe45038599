"""Execution pipeline benchmark: the runtime's own overhead with the offline engine (no network).

Run: ``.venv/bin/python bench/execute.py [--chunks 100000] [--runs 300]``

Without ``DATABASE_URL`` it starts a throwaway PostgreSQL cluster (``scripts/pg-cluster``), migrates it,
and removes it afterwards. Setup: one active agent with 4 guardrails (PII redaction on input and
output, prompt injection on input and retrieved passages, citations required, disclaimer), 3 built-in
tools and 2 knowledge bases holding ``--chunks`` archive chunks between them (default 100,000:
distractor chunks drawn from a Zipf vocabulary of the guidance's words and made-up words, full-text
indexed and screened as ingestion does), then the demo guidance ingested for real, after the archive.
Every run is a full ``agents.runtime.execute``: guardrails, retrieval, prompt, offline engine (and a
tool call for the calculation questions), output guardrails, and the execution, its steps and the
audit event written to the database.

Prints p50 / p95 / p99 latency per execution (target: p95 ≤ 20 ms; it was 15 ms until issue 14 wrote
the run's record by the plain path — ORM and ``audit_record`` — instead of one hand-written statement,
which saved about 0.2 ms: a model call takes seconds), the share spent in retrieval, and the number of
database queries per execution for each question (target: the same for all).

``DATABASE_URL=sqlite:///…`` runs it on SQLite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "Who accounts for the VAT on cross-border B2B services?",
    "What must an invoice show for an intra-community supply?",
    "When does the reverse charge apply to consulting services?",
    "What is the VAT on €1,000 at 19%?",
    "How long must invoices be kept by the supplier?",
    "Which Member State taxes electronically supplied services to consumers?",
    "What is the VAT on €2,450.50 at 21%?",
    "Can input VAT on company cars be deducted in full?",
    "What are the deadlines for the recapitulative statement?",
    "How are credit notes treated when the price is reduced after supply?",
]

#: The pipeline's own overhead at p95 (ms) that the run must stay under.
TARGET_P95_MS = 20.0

DEMO_DIR = ROOT / "agents" / "management" / "commands" / "demo_data"
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "fel", "gor", "hal", "jun", "kir",
             "lam", "mor", "nix", "pel", "quo", "ras", "sol", "tur", "ul", "ven", "wes", "xan", "yor", "zel"]  # fmt: skip


def vocabulary(rng: random.Random, texts: list[str]) -> tuple[list[str], list[float]]:
    """The real words of the demo guidance mixed with 25,000 made-up words, Zipf-weighted (rank^-1.07),
    so that distractor chunks share words with real questions the way a large library does."""
    real = sorted({w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z-]{2,}", t.lower())})
    made_up: set[str] = set()
    while len(made_up) < 25_000:
        made_up.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    words = real + sorted(made_up)
    rng.shuffle(words)
    return words, list(itertools.accumulate(1 / rank**1.07 for rank in range(1, len(words) + 1)))


def paragraph(rng: random.Random, words: list[str], cum: list[float]) -> str:
    sentences, length, target = [], 0, rng.randint(450, 1100)
    while length < target:
        sentence = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(7, 22)))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        length += len(sentences[-1]) + 1
    return " ".join(sentences)


def start_cluster() -> tuple[str | None, str]:
    if os.environ.get("DATABASE_URL"):
        return None, os.environ["DATABASE_URL"]
    directory = tempfile.mkdtemp(prefix="pg-bench-execute-")
    url = subprocess.check_output(
        [str(ROOT / "scripts" / "pg-cluster"), "start", directory], text=True
    ).strip()
    base, _, _ = url.rpartition("/")
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE prisma_glow")
    return directory, url


def stop_cluster(directory: str | None) -> None:
    if directory:
        subprocess.run([str(ROOT / "scripts" / "pg-cluster"), "stop", directory], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def build(chunks: int, rng: random.Random):
    """Organisation, agent, persona, 4 guardrails, 2 knowledge bases with ``chunks`` chunks, 3 tools."""
    import hashlib

    from django.db import transaction

    from agents.models import Agent, AgentGuardrail, AgentKnowledge, AgentTool
    from guardrails.models import Guardrail
    from guardrails.screening import screen
    from knowledge.models import Chunk, Document, KnowledgeBase
    from personas.models import Persona
    from prisma_glow.tenancy.models import Organization
    from tools.models import Tool

    org, _ = Organization.objects.get_or_create(slug="bench-execute", defaults={"name": "Bench Execute"})
    agent = Agent.objects.filter(organization=org, slug="vat-adviser").first()
    if agent is not None:
        return agent
    with transaction.atomic():
        agent = Agent.objects.create(
            organization=org, name="VAT adviser", slug="vat-adviser", type="tax", status="active"
        )
        Persona.objects.create(
            agent=agent, version=1, name="VAT specialist", is_active=True,
            system_prompt="You are a senior VAT specialist of the firm. Cite the firm's guidance; never give a "
            "definitive opinion without review.",
        )  # fmt: skip
        guardrails = [
            Guardrail(organization=org, name="PII", kind="pii", action="redact", applies_to_output=True),
            Guardrail(
                organization=org,
                name="Prompt injection",
                kind="prompt_injection",
                action="block",
                applies_to_retrieval=True,
            ),  # fmt: skip
            Guardrail(
                organization=org,
                name="Citations",
                kind="citation_required",
                action="warn",
                applies_to_input=False,
                applies_to_output=True,
            ),  # fmt: skip
            Guardrail(
                organization=org,
                name="Disclaimer",
                kind="disclaimer",
                action="append",
                applies_to_input=False,
                applies_to_output=True,
                config={"text": "This is general information, not tax advice."},
            ),  # fmt: skip
        ]
        for order, guardrail in enumerate(guardrails):
            guardrail.save()
            AgentGuardrail.objects.create(agent=agent, guardrail=guardrail, order=order)
        for order, slug in enumerate(["vat-calculator", "vat-iban-validator", "currency-calculator"]):
            AgentTool.objects.create(
                agent=agent, tool=Tool.objects.get(organization=None, slug=slug), order=order
            )
    from knowledge import services as knowledge_services

    texts = [path.read_text(encoding="utf-8") for path in sorted(DEMO_DIR.glob("*.md"))]
    words, cum = vocabulary(rng, texts)
    for index, name in enumerate(["EU VAT guidance", "Firm memos"]):
        kb = KnowledgeBase.objects.create(organization=org, name=name)
        AgentKnowledge.objects.create(agent=agent, knowledge_base=kb, order=index, top_k=4)
        started = time.perf_counter()
        target = chunks // 2
        per_doc = 100
        for first in range(0, target, per_doc):
            with transaction.atomic():
                document = Document.objects.create(
                    knowledge_base=kb,
                    title=f"{name} — archive {first // per_doc + 1}",
                    source="text",
                    sha256=hashlib.sha256(f"{name}-{first}".encode()).hexdigest(),
                    status="ready",
                    chunk_count=min(per_doc, target - first),
                )
                Chunk.objects.bulk_create(
                    [
                        Chunk(
                            document=document,
                            ordinal=i,
                            text=text,
                            page=i // 3 + 1,
                            token_count=150,
                            screening=screen(text),  # as ingestion stores it
                        )
                        for i, text in enumerate(
                            paragraph(rng, words, cum) for _ in range(min(per_doc, target - first))
                        )
                    ]
                )
        archive = Chunk.objects.filter(document__knowledge_base=kb).count()
        if index == 0:
            # The firm's real guidance, through the real ingestion, stored after the archive as a firm's
            # newest documents are (the unfavourable order for the capped candidate tiers). The
            # immediate task backend (set in main) processes each document right here.
            for path, text in zip(sorted(DEMO_DIR.glob("*.md")), texts, strict=True):
                knowledge_services.document_create(knowledge_base=kb, actor=None, title=path.stem, text=text)
        total = Chunk.objects.filter(document__knowledge_base=kb).count()
        real = total - archive
        print(
            f"  {name}: {total:,} chunks ({real} from the demo guidance) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return agent


def reference_loop_ms() -> float:
    """A fixed pure-Python workload (best of 20): how fast this machine runs Python right now. On shared
    virtual machines it varies by a third from minute to minute, and the latencies with it."""
    best = float("inf")
    for _ in range(20):
        started = time.perf_counter()
        sum(i * i for i in range(20_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    cluster, url = start_cluster()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prisma_glow.settings")
    os.environ.setdefault("PRISMA_GLOW_VAR_DIR", tempfile.mkdtemp(prefix="bench-execute-var-"))
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend")
    # Production settings: with DEBUG on, Django also formats and keeps every query for the debug page.
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    try:
        import django

        django.setup()
        import logging

        logging.getLogger("django.tasks").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from agents.runtime import execute

        print(f"Database: {connection.vendor} ({'throwaway cluster' if cluster else 'DATABASE_URL'})")
        call_command("migrate", verbosity=0)
        rng = random.Random(20261127)
        print(f"Building: 4 guardrails, 3 tools, 2 knowledge bases with {args.chunks:,} chunks…", flush=True)
        agent = build(args.chunks, rng)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        # Queries per execution, per question (must not vary). The first run of the agent in a process
        # also loads its configuration (agents.runtime.loading); later runs reuse it.
        from agents.runtime import loading

        loading.cache.clear()
        with CaptureQueriesContext(connection) as ctx:
            execute(agent, QUESTIONS[0], source="cli")
        first_run = len(ctx.captured_queries)
        counts = {}
        for question in QUESTIONS:
            with CaptureQueriesContext(connection) as ctx:
                execution = execute(agent, question, source="cli")
            assert execution.status == "completed", (question, execution.status, execution.error)
            counts[question] = len(ctx.captured_queries)

        for question in QUESTIONS * 2:  # warm-up
            execute(agent, question, source="cli")
        totals, cpu, retrieval, tool_runs = [], [], [], 0
        load_before = os.getloadavg()[0]
        reference_before = reference_loop_ms()
        for i in range(args.runs):
            question = QUESTIONS[i % len(QUESTIONS)]
            started, started_cpu = time.perf_counter(), time.process_time()
            execution = execute(agent, question, source="cli")
            totals.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            steps = list(execution.steps.values_list("kind", "duration_ms"))
            retrieval.append(sum(d for k, d in steps if k == "retrieval"))
            tool_runs += sum(1 for k, _ in steps if k == "tool_call")

        p95 = percentile(totals, 95)
        print()
        print(
            f"Executions: {args.runs} ({tool_runs} with a tool call), offline engine, {args.chunks:,} chunks"
        )
        print(
            f"Latency per execution (ms): p50 {statistics.median(totals):.2f}  p95 {p95:.2f}  "
            f"p99 {percentile(totals, 99):.2f}  max {max(totals):.2f}"
        )
        print(
            f"  of which retrieval (ms): p50 {statistics.median(retrieval):.2f}  p95 {percentile(retrieval, 95):.2f}"
        )
        rest = [t - r for t, r in zip(totals, retrieval, strict=True)]
        print(
            f"  excluding retrieval (ms): p50 {statistics.median(rest):.2f}  p95 {percentile(rest, 95):.2f}"
        )
        print(
            f"Python CPU per execution in this process (ms): p50 {statistics.median(cpu):.2f}  "
            f"p95 {percentile(cpu, 95):.2f}"
        )
        print(
            f"Machine load average (1 min) before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs (wall-clock figures grow with it)"
        )
        print(
            f"Reference Python loop before/after (ms, lower is faster): {reference_before:.2f} / "
            f"{reference_loop_ms():.2f}"
        )
        distinct = sorted(set(counts.values()))
        print(
            f"Queries per execution: {', '.join(map(str, distinct))} (over {len(counts)} questions; "
            f"{first_run} for the agent's first run in a process, which loads its configuration)"
        )
        ok_latency = p95 <= TARGET_P95_MS
        ok_queries = len(distinct) == 1
        print(
            f"Target p95 ≤ {TARGET_P95_MS:g} ms: {'met' if ok_latency else 'NOT met'}; constant query count: {'yes' if ok_queries else 'NO'}"
        )
        return 0 if ok_latency and ok_queries else 1
    finally:
        from django.db import connections

        connections.close_all()
        stop_cluster(cluster)


if __name__ == "__main__":
    sys.exit(main())
