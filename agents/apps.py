from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        # Agents composes the apps below it: knowledge screens each passage it stores through its
        # screening hook, and the screener is guardrails' prompt-injection detector (the one an
        # agent run's retrieval stage applies). Knowledge and guardrails never import each other.
        # The chunker, too, asks guardrails' PII detector where identifiers are, so that it never
        # cuts one in two (each half would pass the PII guardrail, which screens passages one by one).
        from guardrails.identifiers import FINDER
        from guardrails.screening import SCREENER
        from knowledge import screening

        screening.register(SCREENER)
        screening.register_identifier_finder(FINDER)
