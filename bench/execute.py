"""Execution pipeline benchmark: the runtime's own overhead with the offline engine (no network).

Run: ``.venv/bin/python bench/execute.py [--chunks 100000] [--runs 300]``

Without ``DATABASE_URL`` it starts a throwaway PostgreSQL cluster (``scripts/pg-cluster``), migrates it,
and removes it afterwards. Setup: one active agent with 4 guardrails (PII redaction on input and
output, prompt injection on input and retrieved passages, citations required, disclaimer), 2 knowledge
bases holding ``--chunks`` chunks between them (default 100,000, synthetic tax prose, full-text
indexed) and 3 built-in tools. Every run is a full ``agents.runtime.execute``: guardrails, retrieval,
prompt, offline engine (and a tool call for the calculation questions), output guardrails, and the
execution, its steps and the audit event written to the database.

Prints p50 / p95 / p99 latency per execution (target: p95 ≤ 15 ms), the share spent in retrieval,
and the number of database queries per execution for each question (target: the same for all).
"""

from __future__ import annotations

import argparse
import os
import random
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

TOPICS = (
    "reverse charge invoice supplier customer member state services goods intra-community supply "
    "deduction input output taxable person place of supply consultancy electronic services consumer "
    "registration threshold distance sales credit note recapitulative statement deadline penalty "
    "exemption zero rate reduced rate standard rate import export customs warehouse triangulation "
    "cars fuel entertainment staff canteen gifts samples records retention audit trail"
).split()
FILLER = (
    "the a of and to in for is on that by with as at from this be are or an which it must shall may "
    "under article directive according where when each any other such its their should has have been"
).split()


def word_pool(rng: random.Random) -> list[str]:
    """Real tax vocabulary plus a few thousand pseudo-words, so term frequencies look like real text."""
    syllables = ["ka", "ve", "ro", "lin", "tar", "mes", "qui", "dor", "pha", "sen", "tu", "gle", "bri", "ox"]
    pseudo = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(4000)}
    return sorted(pseudo)


def paragraph(rng: random.Random, pool: list[str]) -> str:
    sentences = []
    for _ in range(rng.randint(3, 6)):
        words = []
        for _ in range(rng.randint(10, 22)):
            roll = rng.random()
            words.append(
                rng.choice(TOPICS) if roll < 0.25 else rng.choice(FILLER) if roll < 0.6 else rng.choice(pool)
            )
        sentences.append(" ".join(words).capitalize() + ".")
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
    from knowledge.models import Chunk, Document, KnowledgeBase
    from personas.models import Persona
    from prisma_glow.tenancy.models import Organization
    from tools.models import Tool

    org, _ = Organization.objects.get_or_create(slug="bench-execute", defaults={"name": "Bench Execute"})
    agent = Agent.objects.filter(organization=org, slug="vat-adviser").first()
    if agent is not None:
        return agent
    pool = word_pool(rng)
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
    per_kb = chunks // 2
    for index, name in enumerate(["EU VAT guidance", "Firm memos"]):
        kb = KnowledgeBase.objects.create(organization=org, name=name)
        AgentKnowledge.objects.create(agent=agent, knowledge_base=kb, order=index, top_k=4)
        per_doc = 100
        started = time.perf_counter()
        for first in range(0, per_kb, per_doc):
            with transaction.atomic():
                document = Document.objects.create(
                    knowledge_base=kb,
                    title=f"{name} — part {first // per_doc + 1}",
                    source="text",
                    sha256=hashlib.sha256(f"{name}-{first}".encode()).hexdigest(),
                    status="ready",
                    chunk_count=min(per_doc, per_kb - first),
                )
                Chunk.objects.bulk_create(
                    [
                        Chunk(
                            document=document,
                            ordinal=i,
                            text=paragraph(rng, pool),
                            page=i // 3 + 1,
                            token_count=80,
                        )
                        for i in range(min(per_doc, per_kb - first))
                    ]
                )
        print(f"  {name}: {per_kb:,} chunks indexed in {time.perf_counter() - started:.1f} s", flush=True)
    return agent


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
    try:
        import django

        django.setup()
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

        # Queries per execution, per question (must not vary).
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
        distinct = sorted(set(counts.values()))
        print(f"Queries per execution: {', '.join(map(str, distinct))} (over {len(counts)} questions)")
        ok_latency = p95 <= 15.0
        ok_queries = len(distinct) == 1
        print(
            f"Target p95 ≤ 15 ms: {'met' if ok_latency else 'NOT met'}; constant query count: {'yes' if ok_queries else 'NO'}"
        )
        return 0 if ok_latency and ok_queries else 1
    finally:
        from django.db import connections

        connections.close_all()
        stop_cluster(cluster)


if __name__ == "__main__":
    sys.exit(main())
