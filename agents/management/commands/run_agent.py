"""``python manage.py run_agent ORG/AGENT-SLUG "question"``: run an agent from the command line and print
the answer, its citations and a summary of the trace."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent, ExecutionSource
from agents.runtime import AgentNotRunnable, execute
from agents.runtime.serialize import execution_to_dict
from prisma_glow.display import format_duration_ms, format_money


class Command(BaseCommand):
    help = "Run an agent on a question and print the answer, its citations and a trace summary."

    def add_arguments(self, parser):
        parser.add_argument("agent", help="ORGANISATION-SLUG/AGENT-SLUG, e.g. demo/vat-adviser-demo")
        parser.add_argument("question")
        parser.add_argument("--persona", type=int, help="Persona version (default: the active one).")
        parser.add_argument(
            "--test", action="store_true", help="Record the run as a test (lets a draft agent run)."
        )
        parser.add_argument("--stream", action="store_true", help="Print the answer as it is produced.")
        parser.add_argument("--json", action="store_true", help="Print the whole execution as JSON.")

    def handle(self, *args, **options):
        org_slug, _, agent_slug = options["agent"].partition("/")
        if not org_slug or not agent_slug:
            raise CommandError("Name the agent as ORGANISATION-SLUG/AGENT-SLUG, e.g. demo/vat-adviser-demo.")
        agent = Agent.objects.filter(organization__slug=org_slug, slug=agent_slug).first()
        if agent is None:
            raise CommandError(f"No agent '{agent_slug}' in an organisation '{org_slug}'.")
        streamed = []

        def on_event(event):
            if event["event"] == "delta":
                streamed.append(event["data"]["text"])
                self.stdout.write(event["data"]["text"], ending="")
                self.stdout.flush()

        try:
            execution = execute(
                agent,
                options["question"],
                source=ExecutionSource.CLI,
                persona=options["persona"],
                is_test=options["test"],
                on_event=on_event if options["stream"] and not options["json"] else None,
            )
        except AgentNotRunnable as exc:
            raise CommandError(str(exc))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        steps = list(execution.steps.order_by("ordinal"))
        if options["json"]:
            self.stdout.write(json.dumps(execution_to_dict(execution, steps), indent=2, ensure_ascii=False))
            return
        if streamed:
            self.stdout.write("")
        elif execution.output:
            self.stdout.write(execution.output)
        if execution.status == "blocked":
            self.stderr.write(self.style.ERROR(f"{execution.status.upper()}: {execution.error}"))
        if execution.citations:
            self.stdout.write("\nCitations:")
            for citation in execution.citations:
                self.stdout.write(f"  [{citation['n']}] {citation['citation']} (score {citation['score']})")
        self.stdout.write("\nTrace:")
        for step in steps:
            self.stdout.write(
                f"  {step.ordinal:>2}. {step.kind:<10} {step.status:<8} {format_duration_ms(step.duration_ms):>9}  {step.name}"
            )
        tokens = (
            f"{execution.tokens_in} in / {execution.tokens_out} out"
            if execution.tokens_in is not None
            else "unknown"
        )
        cost = (
            format_money(execution.cost, agent.organization.currency)
            if execution.cost is not None
            else "unknown"
        )
        self.stdout.write(
            f"\nExecution #{execution.pk}: {execution.status}, {format_duration_ms(execution.latency_ms)}, tokens {tokens}, "
            f"cost {cost}, model {execution.model} ({execution.provider_kind})"
            + (" [test]" if execution.is_test else "")
        )
        if execution.status == "failed":
            raise CommandError(f"The execution failed: {execution.error}")
