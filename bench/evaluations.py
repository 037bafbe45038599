"""Evaluation benchmark: one run of a 50-case suite on the offline engine, start to finish.

Run: ``.venv/bin/python bench/evaluations.py [--cases 50]``

Without ``DATABASE_URL`` it starts a throwaway PostgreSQL cluster (``scripts/pg-cluster``), migrates it,
and removes it afterwards. Setup: the demo firm (``seed_demo``: its documents ingested for real, its
guardrails and tools) and a suite of ``--cases`` cases for the demo VAT adviser, cycling through the
demo suite's questions (answered with citations, calculations through the VAT calculator, requests
the guardrails block), each with its checks. The run is queued with ``services.run_create`` (the
immediate task backend runs it at once, as a worker would): every case is a full
``agents.runtime.execute`` on the pinned release, its record and audit event written, its checks
applied, the progress saved, then the totals.

Prints the run's wall time, per case, and its p50 / p95 latency (target: 50 cases within 30 s; exits
1 when over). ``DATABASE_URL=sqlite:///…`` runs it on SQLite.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from execute import start_cluster, stop_cluster  # noqa: E402  (bench/execute.py's throwaway cluster)

#: Seconds a run of 50 cases may take.
TARGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50)
    args = parser.parse_args()

    cluster, url = start_cluster()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prisma_glow.settings")
    var = tempfile.mkdtemp(prefix="bench-evaluations-var-")
    os.environ.setdefault("PRISMA_GLOW_VAR_DIR", var)
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.pop("PRISMA_GLOW_DEMO_PASSWORD", None)
    try:
        import django

        django.setup()
        import logging

        logging.getLogger("django.tasks").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connection

        from agents.models import Agent
        from evaluations import services
        from evaluations.demo import SUITES
        from evaluations.models import EvalRun

        print(f"Database: {connection.vendor} ({'throwaway cluster' if cluster else 'DATABASE_URL'})")
        call_command("migrate", verbosity=0)
        call_command("seed_demo", stdout=StringIO())
        agent = Agent.objects.get(organization__slug="demo", slug="vat-adviser-demo")
        questions = SUITES[agent.slug]
        suite = services.suite_create(
            organization=agent.organization, actor=None, agent=agent, name=f"Benchmark {secrets.token_hex(3)}"
        )
        for n in range(args.cases):
            spec = questions[n % len(questions)]
            services.case_create(
                suite=suite,
                actor=None,
                name=f"{n + 1:03d} {spec.name}",
                input=spec.input,
                must_pass=spec.must_pass,
                checks=list(spec.checks),
            )
        started = time.perf_counter()
        run = services.run_create(suite=suite, actor=None, release=agent.active_release)
        elapsed = time.perf_counter() - started
        run = EvalRun.objects.get(pk=run.pk)
        print(
            f"Run of {run.done} cases: {run.status}, pass rate {run.pass_rate}, "
            f"{elapsed:.2f} s ({elapsed / max(run.done, 1) * 1000:.0f} ms per case; "
            f"execution latency p50 {run.latency_p50_ms} ms, p95 {run.latency_p95_ms} ms)"
        )
        ok = elapsed <= TARGET_SECONDS * args.cases / 50 and run.status == "passed"
        print(
            f"Target: {args.cases} cases within {TARGET_SECONDS * args.cases / 50:.0f} s, all passing: {'met' if ok else 'NOT MET'}"
        )
        return 0 if ok else 1
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    sys.exit(main())
