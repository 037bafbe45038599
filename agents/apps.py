from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        # Agents composes the apps below it: knowledge screens each passage it stores through its
        # screening hook, and the screener is guardrails' prompt-injection detector (the one an
        # agent run's retrieval stage applies). Knowledge and guardrails never import each other.
        from guardrails.screening import SCREENER
        from knowledge import screening

        screening.register(SCREENER)
