"""Routes of the evaluations API, registered on the one router of ``prisma_glow.api.urls``."""

from evaluations.api.views import (
    CaseResultViewSet,
    CaseViewSet,
    RequirementViewSet,
    RunViewSet,
    SaveAsCaseViewSet,
    SuiteViewSet,
)


def register(router) -> None:
    """Suites with their cases nested under ``/evaluation-suites/{suite_pk}/``, runs, the marks on their cases, requirements,
    and ``/executions/{execution_pk}/save-as-case/``."""
    router.register("evaluation-suites", SuiteViewSet, basename="evaluation-suite")
    router.register(r"evaluation-suites/(?P<suite_pk>[0-9]+)/cases", CaseViewSet, basename="evaluation-case")
    router.register("evaluation-runs", RunViewSet, basename="evaluation-run")
    router.register("evaluation-case-results", CaseResultViewSet, basename="evaluation-case-result")
    router.register("evaluation-requirements", RequirementViewSet, basename="evaluation-requirement")
    router.register(
        r"executions/(?P<execution_pk>[0-9]+)/save-as-case",
        SaveAsCaseViewSet,
        basename="execution-save-as-case",
    )
