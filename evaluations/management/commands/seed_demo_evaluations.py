"""``manage.py seed_demo_evaluations [--org SLUG]``: the demo firm's evaluation suites, and one run of
each against its agent's release, so the demo shows a passed run (``make run`` calls it after
``seed_demo``). Idempotent: a suite, a case or a run that exists is left as it is."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent, Release
from agents.services import release_create
from evaluations import services
from evaluations.demo import SUITE_DESCRIPTION, SUITE_NAME, SUITES
from evaluations.models import Case, EvalRun, Suite
from prisma_glow.tenancy.models import Organization


class Command(BaseCommand):
    help = "Create (idempotently) the demo firm's evaluation suites and run each once against its release."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo", help="The demo organisation's slug (default: demo).")

    def handle(self, *args, org: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(
                f"There is no organisation '{org}': run `manage.py seed_demo --org {org}` first."
            )
        for slug, cases in SUITES.items():
            agent = Agent.objects.filter(organization=organization, slug=slug).first()
            if agent is None:
                self.stdout.write(f"No agent '{slug}' in '{org}': its suite is skipped.")
                continue
            suite = Suite.objects.filter(agent=agent, name=SUITE_NAME).first()
            if suite is None:
                suite = services.suite_create(
                    organization=organization,
                    actor=None,
                    agent=agent,
                    name=SUITE_NAME,
                    description=SUITE_DESCRIPTION,
                )
            existing = set(Case.objects.filter(suite=suite).values_list("name", flat=True))
            for case in cases:
                if case.name not in existing:
                    services.case_create(
                        suite=suite,
                        actor=None,
                        name=case.name,
                        input=case.input,
                        must_pass=case.must_pass,
                        checks=list(case.checks),
                    )
            release = self._release(agent)
            if EvalRun.objects.filter(suite=suite, release=release).exists():
                continue
            run = services.run_create(suite=suite, actor=None, release=release)
            # Run here, not only through the queue: the demo shows the outcome as soon as it starts. The
            # queued task then finds the run finished and leaves it (run_execute is idempotent).
            run = services.run_execute(run_id=run.pk)
            self.stdout.write(
                f"{agent.name}: '{suite.name}' on release {release.number} {run.status} "
                f"({run.passed_count} of {run.done} cases)."
            )
            if run.status != "passed":
                failed = ", ".join(r.case_name for r in run.results.filter(passed=False))
                raise CommandError(f"The demo suite of '{agent.name}' did not pass: {failed}.")

    def _release(self, agent: Agent) -> Release:
        """The agent's active release, else its newest, else a first one (not activated) to evaluate."""
        if agent.active_release_id:
            return agent.active_release
        release = Release.objects.filter(agent=agent).order_by("-number").first()
        if release is None:
            release = release_create(
                agent=agent,
                actor=None,
                notes="Release of the demo configuration, to evaluate before going live.",
            )
        return release
