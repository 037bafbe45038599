"""``/api/v1/``: evaluation suites, their cases (+ import), runs (+ compare), the requirement that
gates an agent's activation, and "save as test case" from an execution.

Thin viewsets: scoping from ``OrganizationScopedMixin``, writes through ``evaluations.services``
(audited), related rows loaded up front so a list costs the same queries whatever its length.
"""

from __future__ import annotations

from django.db.models import Count, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from agents.models import Execution
from agents.privacy import may_see_identifiers
from agents.services import release_for
from evaluations import services
from evaluations.api.filtersets import RequirementFilterSet, RunFilterSet, SuiteFilterSet
from evaluations.api.serializers import (
    CaseResultSerializer,
    CaseSerializer,
    ImportResultSerializer,
    ImportSerializer,
    MarkSerializer,
    RequirementSerializer,
    RunCreateSerializer,
    RunDetailSerializer,
    RunSerializer,
    SaveAsCaseSerializer,
    SuiteSerializer,
)
from evaluations.imports import parse_cases
from evaluations.models import Case, CaseResult, EvalRun, Requirement, Suite
from evaluations.selectors import run_comparison
from prisma_glow.api.parsers import JSONParser, MultiPartParser
from prisma_glow.api.viewsets import OrganizationScopedMixin, OrganizationScopedViewSet
from prisma_glow.ids import parse_id

SUITE_PATH = OpenApiParameter(
    "suite_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The suite's id."
)
EXECUTION_PATH = OpenApiParameter(
    "execution_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The execution's id."
)
CASE_EXAMPLE = {
    "name": "Reverse charge on consulting for a French client",
    "input": "Who accounts for the VAT when we invoice consulting services to a business customer in France?",
    "must_pass": True,
    "checks": [
        {"kind": "contains", "text": "reverse charge"},
        {"kind": "cites_at_least", "count": 1},
        {"kind": "not_blocked"},
    ],
}


# --- Suites ------------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="List evaluation suites", description="Filter by `agent`."),
    retrieve=extend_schema(summary="Retrieve an evaluation suite"),
    create=extend_schema(
        summary="Create an evaluation suite",
        examples=[
            OpenApiExample(
                "VAT regression suite",
                request_only=True,
                value={"agent": 12, "name": "VAT regression", "description": "Questions from the VAT desk."},
            )
        ],
    ),
    update=extend_schema(summary="Replace a suite's name and description"),
    partial_update=extend_schema(summary="Change a suite's name or description"),
    destroy=extend_schema(
        summary="Delete a suite",
        description="409 once it has runs (the record of what was tested) or while an agent requires it.",
    ),
)
class SuiteViewSet(OrganizationScopedViewSet):
    """Suites of test cases, one agent each."""

    queryset = Suite.objects.annotate(case_count=Count("cases"))
    serializer_class = SuiteSerializer
    parser_classes = [JSONParser]
    filterset_class = SuiteFilterSet
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name", "id"]
    policy_resource = "evaluation_suite"

    def _fresh(self, suite: Suite) -> Suite:
        return self.get_queryset().get(pk=suite.pk)

    def perform_create(self, serializer):
        suite = services.suite_create(
            organization=self.organization, actor=self.access.actor, **serializer.validated_data
        )
        serializer.instance = self._fresh(suite)

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k != "agent"}
        suite = services.suite_update(suite=serializer.instance, actor=self.access.actor, **fields)
        serializer.instance = self._fresh(suite)

    def perform_destroy(self, instance):
        services.suite_delete(suite=instance, actor=self.access.actor)


# --- Cases -------------------------------------------------------------------------------------------
@extend_schema(parameters=[SUITE_PATH])
@extend_schema_view(
    list=extend_schema(summary="List a suite's cases", description="In the order they were written."),
    retrieve=extend_schema(summary="Retrieve a case"),
    create=extend_schema(
        summary="Add a case to a suite",
        description="`checks` is validated: an unknown kind, a missing setting, a regular expression that "
        "backtracks catastrophically or an invalid JSON Schema is a 400 naming the check (`Check 2 (regex): "
        "…`).",
        examples=[OpenApiExample("Reverse charge", request_only=True, value=CASE_EXAMPLE)],
    ),
    update=extend_schema(summary="Replace a case"),
    partial_update=extend_schema(summary="Change a case"),
    destroy=extend_schema(summary="Delete a case", description="Past runs keep its name and verdicts."),
)
class CaseViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """The cases of one suite (``/evaluation-suites/{suite_pk}/cases/``); another organisation's suite is a 404."""

    queryset = Case.objects.all()
    serializer_class = CaseSerializer
    parser_classes = [JSONParser]
    ordering = ["id"]
    filter_backends = []
    policy_resource = "evaluation_case"
    operations = {"import_cases": "evaluation_case.add"}

    @property
    def suite(self) -> Suite:
        if not hasattr(self, "_suite"):
            self._suite = get_object_or_404(
                Suite.objects.filter(organization=self.organization).select_related("organization"),
                pk=self.kwargs["suite_pk"],
            )
        return self._suite

    def get_serializer_context(self):
        # A case opened on its own (or just written) shows its texts in full to editors and above.
        return {**super().get_serializer_context(), "opened_alone": self.detail or self.action == "create"}

    def get_queryset(self):
        return super().get_queryset().filter(suite=self.suite).order_by("id")

    def perform_create(self, serializer):
        serializer.instance = services.case_create(
            suite=self.suite, actor=self.access.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.case_update(
            case=serializer.instance, actor=self.access.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.case_delete(case=instance, actor=self.access.actor)

    @extend_schema(
        summary="Import cases from a CSV or JSONL file",
        description="Multipart, field `file`: a `.csv` file with a header line (columns `name`, `input`, "
        "and optionally `as_of`, `must_pass`, `expected_output`, `checks` as JSON) or a `.jsonl` file "
        "(one JSON object per line with the same keys). All or nothing: a 400 lists every bad line "
        "(`Line 3: 'input' is missing or empty.`). At most 1,000 cases and 2 MB per file.",
        request={"multipart/form-data": ImportSerializer},
        responses={201: ImportResultSerializer},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_cases(self, request, suite_pk=None):
        payload = ImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        rows = parse_cases(upload.name, upload.read())
        cases = services.cases_import(suite=self.suite, actor=self.access.actor, rows=rows)
        body = {"created": len(cases), "cases": CaseSerializer(cases, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


# --- Save as test case -------------------------------------------------------------------------------
@extend_schema(parameters=[EXECUTION_PATH])
class SaveAsCaseViewSet(OrganizationScopedMixin, viewsets.GenericViewSet):
    """``POST /executions/{execution_pk}/save-as-case/``: a case from a past run."""

    queryset = Execution.objects.all()
    serializer_class = SaveAsCaseSerializer
    parser_classes = [JSONParser]
    operations = {"create": "evaluation_case.add"}

    @extend_schema(
        summary="Save an execution as a test case",
        description="Adds a case to `suite` (a suite of the execution's agent) with the execution's input "
        "and as-of date, its answer as expected output, and a default check: `blocked` for a blocked run, "
        "else `not_blocked` and `cites_at_least` as many passages as it cited. The input and answer are "
        "saved as you may see them: client identifiers you see masked stay masked.",
        request=SaveAsCaseSerializer,
        responses={201: CaseSerializer},
        examples=[
            OpenApiExample("Into the VAT suite", request_only=True, value={"suite": 3, "must_pass": True})
        ],
    )
    def create(self, request, execution_pk=None):
        execution = get_object_or_404(self.get_queryset(), pk=execution_pk)
        payload = SaveAsCaseSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        case = services.case_from_execution(
            execution=execution,
            actor=self.access.actor,
            visible=may_see_identifiers(self.access, execution, opened_alone=True),
            **payload.validated_data,
        )
        return Response(CaseSerializer(case).data, status=status.HTTP_201_CREATED)


# --- Runs --------------------------------------------------------------------------------------------
AGAINST = OpenApiParameter(
    "against", OpenApiTypes.INT, OpenApiParameter.QUERY, required=True, description="The run to compare with."
)


@extend_schema_view(
    list=extend_schema(
        summary="List evaluation runs", description="Newest first. Filter by `suite`, `agent`, `status`."
    ),
    retrieve=extend_schema(summary="Retrieve a run with its progress and per-case results"),
)
class RunViewSet(
    OrganizationScopedMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Runs of a suite against a release, done in the background."""

    queryset = EvalRun.objects.select_related("suite", "release").order_by("-created_at", "-id")
    serializer_class = RunSerializer
    parser_classes = [JSONParser]
    filterset_class = RunFilterSet
    filter_backends = [
        backend for backend in viewsets.GenericViewSet.filter_backends if backend.__name__ != "SearchFilter"
    ]
    ordering_fields = ["created_at"]
    policy_resource = "evaluation_run"
    operations = {"compare": "evaluation_run.view"}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(Prefetch("results", CaseResult.objects.order_by("id")))
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return RunDetailSerializer
        if self.action == "create":
            return RunCreateSerializer
        return RunSerializer

    @extend_schema(
        summary="Run a suite against a release",
        description="Queues the run and answers 202 with it; a worker runs each case through the agent "
        "(executions with source `eval`, the release pinned, each case's as-of date). Follow `progress` "
        "and `status` (`queued` → `running` → `passed` / `failed`, or `error` if the run itself could "
        "not finish) with `GET /evaluation-runs/{id}/`. `release` is a number (default: the agent's "
        "newest release); 409 when the agent has no release or the suite no case.",
        request=RunCreateSerializer,
        responses={202: RunSerializer},
        examples=[OpenApiExample("Release 3", request_only=True, value={"suite": 3, "release": 3})],
    )
    def create(self, request, *args, **kwargs):
        payload = RunCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        suite = payload.validated_data["suite"]
        number = payload.validated_data.get("release")
        release = None if number is None else release_for(agent=suite.agent, number=number)
        run = services.run_create(suite=suite, actor=self.access.actor, release=release)
        run = self.get_queryset().get(pk=run.pk)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Compare two runs case by case",
        description="Each case of this run beside its result in `against` (usually a run of another "
        "release): `improved` (failed there, passes here), `regressed`, `unchanged`, `added` or "
        "`removed`; `summary` counts them.",
        parameters=[AGAINST],
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "One regression",
                response_only=True,
                value={
                    "run": 9,
                    "against": 7,
                    "summary": {"improved": 1, "regressed": 1, "unchanged": 6, "added": 0, "removed": 0},
                    "cases": [
                        {
                            "case": 41,
                            "name": "Reverse charge on consulting",
                            "must_pass": True,
                            "change": "regressed",
                            "before": {"passed": True, "execution": 880, "reason": ""},
                            "after": {
                                "passed": False,
                                "execution": 951,
                                "reason": "The answer does not contain “reverse charge”.",
                            },
                        }
                    ],
                },
            )
        ],
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def compare(self, request, pk=None):
        run = self.get_object()
        raw = request.query_params.get("against", "")
        against_id = parse_id(raw)
        if against_id is None:
            raise serializers.ValidationError(
                {"against": ["Give the id of the run to compare with: ?against=7."]}
            )
        against = EvalRun.objects.filter(organization=self.organization, pk=against_id).first()
        if against is None:
            raise serializers.ValidationError({"against": [f"There is no run {raw} in your organisation."]})
        return Response(run_comparison(run=run, against=against))


class CaseResultViewSet(OrganizationScopedMixin, viewsets.GenericViewSet):
    """``POST /evaluation-case-results/{id}/mark/``: a person marks a case of a run pass or fail."""

    queryset = CaseResult.objects.select_related("run")
    serializer_class = MarkSerializer
    parser_classes = [JSONParser]
    filter_backends = []
    operations = {"mark": "evaluation_run.mark"}

    @extend_schema(
        summary="Mark a case of a run pass or fail",
        description="A person's judgement of the answer, whatever the checks said (`passed`: true or "
        "false; null withdraws the mark). Audited. The marks against a rubric judge's verdicts are the "
        "suite's judge agreement, shown on the suite's staff page; a rubric check with `min_agreement` "
        "counts only once the judge reaches it. Editors signed in, or write keys.",
        request=MarkSerializer,
        responses={200: CaseResultSerializer},
    )
    @action(detail=True, methods=["post"])
    def mark(self, request, pk=None):
        result = self.get_object()
        payload = MarkSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.result_mark(
            result=result, actor=self.access.actor, passed=payload.validated_data["passed"]
        )
        return Response(CaseResultSerializer(result).data)


# --- Requirements ------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="List the agents' evaluation requirements", description="Filter by `agent`."),
    retrieve=extend_schema(summary="Retrieve an evaluation requirement"),
    create=extend_schema(
        summary="Require a suite before an agent's releases go live",
        description="A release then becomes active only if the suite's latest run on exactly that release "
        "passed every must-pass case and at least `threshold` (0 to 1, default 0.9) of all cases. One "
        "per agent (409 when it has one). Admins and owners only (or the `admin` scope).",
        examples=[
            OpenApiExample("90 %", request_only=True, value={"agent": 12, "suite": 3, "threshold": "0.9"})
        ],
    ),
    update=extend_schema(summary="Replace a requirement's suite and threshold"),
    partial_update=extend_schema(summary="Change a requirement's suite or threshold"),
    destroy=extend_schema(
        summary="Remove a requirement", description="Releases no longer need a passed run."
    ),
)
class RequirementViewSet(OrganizationScopedViewSet):
    """Which suite, at which pass rate, gates each agent's activation."""

    queryset = Requirement.objects.select_related("agent", "suite")
    serializer_class = RequirementSerializer
    parser_classes = [JSONParser]
    filterset_class = RequirementFilterSet
    filter_backends = [
        backend for backend in viewsets.ModelViewSet.filter_backends if backend.__name__ != "SearchFilter"
    ]
    ordering_fields = ["created_at"]
    ordering = ["agent", "id"]
    policy_resource = "evaluation_requirement"

    def perform_create(self, serializer):
        serializer.instance = services.requirement_create(
            organization=self.organization, actor=self.access.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k != "agent"}
        serializer.instance = services.requirement_update(
            requirement=serializer.instance, actor=self.access.actor, **fields
        )

    def perform_destroy(self, instance):
        services.requirement_delete(requirement=instance, actor=self.access.actor)
