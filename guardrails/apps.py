from django.apps import AppConfig, apps


class GuardrailsConfig(AppConfig):
    name = "guardrails"

    def ready(self) -> None:
        # Knowledge screens each passage it stores through its screening hook (knowledge.screening):
        # offer the prompt-injection detector there. Through the app registry rather than an import,
        # since guardrails and knowledge are independent layers (neither imports the other).
        if apps.is_installed("knowledge"):
            from guardrails.screening import SCREENER

            apps.get_app_config("knowledge").register_screener(SCREENER)
