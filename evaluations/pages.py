"""The staff pages of evaluations (``admin.py`` mounts them): a suite's page (its requirement, judge
agreement, cases, the case editor, import, starting a run), a run's page (progress polled by HTMX while
it is queued or running; results with each check's verdict; people's marks), the comparison of two
runs, and the "Save as test case" action on an execution's page (registered with agents' admin).

Thin doors: every write is a service of ``evaluations.services``; permissions are the policy's
operations (``evaluation_*``); another organisation's rows answer 404 (``scoped_get``)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse

from agents.models import Execution, ExecutionStatus, Release
from evaluations import checks as checks_engine
from evaluations import services
from evaluations.imports import MAX_BYTES, parse_cases
from evaluations.models import Case, CaseResult, EvalRun, Requirement, Suite
from evaluations.selectors import judge_agreement, judge_passed, run_comparison
from guardrails.masking import mask_text
from prisma_glow.admin.base import add_errors_to_form, admin_decide, render_admin_page, run_service
from prisma_glow.admin.htmx import htmx_partial
from prisma_glow.admin.scoping import get_admin_access, scoped_get

#: How often the run page asks for progress while the run is queued or running (seconds).
POLL_SECONDS = 2

CHECK_KINDS_HELP = [
    ("contains / not_contains", '{"kind": "contains", "text": "reverse charge", "ignore_case": true}'),
    ("regex", '{"kind": "regex", "pattern": "\\\\b19 ?%", "ignore_case": false}'),
    ("cites_at_least", '{"kind": "cites_at_least", "count": 1}'),
    ("cites_document", '{"kind": "cites_document", "document_title": "VAT manual"}'),
    ("blocked / not_blocked", '{"kind": "not_blocked", "guardrail": "PII filter"}'),
    ("tool_called", '{"kind": "tool_called", "tool": "vat-calculator", "arguments": {"rate": 19}}'),
    ("json_schema", '{"kind": "json_schema", "schema": {"type": "object", "required": ["total"]}}'),
    ("number_within", '{"kind": "number_within", "value": 190, "tolerance": 0.5}'),
    ("latency_under", '{"kind": "latency_under", "ms": 5000}'),
    ("cost_under", '{"kind": "cost_under", "amount": "0.05"}'),
    (
        "rubric",
        '{"kind": "rubric", "rubric": "Names the reverse charge and who pays", "min_agreement": 0.8}',
    ),
]


class ChecksField(forms.CharField):
    """A JSON list of checks, validated by the checks engine (each bad check named)."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "pg-code"})

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
        return checks_engine.validate_checks(raw)


class CaseForm(forms.Form):
    name = forms.CharField(max_length=200)
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="The question put to the agent."
    )
    as_of = forms.DateField(
        required=False, help_text="Knowledge as of this day (documents in force then); blank: today."
    )
    must_pass = forms.BooleanField(
        required=False, help_text="A run failing this case fails, whatever its rate."
    )
    expected_output = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Shown beside the answer."
    )
    checks = ChecksField(
        required=False,
        help_text='A JSON list of checks, e.g. [{"kind": "contains", "text": "reverse charge"}]; the kinds '
        "are listed beside the form.",
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text=f"A .csv (with a header line) or .jsonl file, at most {MAX_BYTES // 2**20} MB."
    )


class RunForm(forms.Form):
    release = forms.ModelChoiceField(queryset=Release.objects.none(), empty_label=None)

    def __init__(self, *args, suite: Suite, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["release"]
        field.queryset = Release.objects.filter(agent_id=suite.agent_id).order_by("-number")
        field.label_from_instance = lambda release: f"Release {release.number}"


# --- Suite ---------------------------------------------------------------------------------------------
def _suite(request, suite_id) -> Suite:
    return scoped_get(Suite.objects.select_related("agent", "judge_provider"), request, pk=suite_id)


def _cases(suite: Suite) -> list[Case]:
    cases = list(Case.objects.filter(suite=suite).order_by("id"))
    for case in cases:
        # A list: client identifiers masked for everyone (agents.privacy), in the checks too.
        case.checks_text = mask_text(json.dumps(case.checks, ensure_ascii=False))
        case.shown_name, case.shown_input = mask_text(case.name), mask_text(case.input)
    return cases


def suite_page(
    model_admin, request, suite_id, *, case_form=None, import_form=None, run_form=None, status=200
):
    suite = _suite(request, suite_id)
    requirement = Requirement.objects.filter(suite=suite, agent_id=suite.agent_id).first()
    agreement = judge_agreement(suite=suite)
    context = {
        "suite": suite,
        "cases": _cases(suite),
        "runs": list(
            EvalRun.objects.filter(suite=suite).select_related("release").order_by("-created_at")[:20]
        ),
        "requirement": requirement,
        "agreement": agreement,
        "can_write": model_admin.allows(request, "evaluation_case.add", suite),
        "can_run": model_admin.allows(request, "evaluation_run.add", suite),
        "case_form": case_form or CaseForm(),
        "import_form": import_form or ImportForm(),
        "run_form": run_form or RunForm(suite=suite),
        "check_kinds": CHECK_KINDS_HELP,
    }
    response = render_admin_page(
        request,
        "admin/evaluations/suite/page.html",
        context,
        title=f"Suite “{suite.name}” — {suite.agent.name}",
        model_admin=model_admin,
    )
    response.status_code = status
    return response


def case_add(model_admin, request, suite_id):
    suite = _suite(request, suite_id)
    model_admin.require(request, "evaluation_case.add", suite)
    form = CaseForm(request.POST)
    if form.is_valid():
        _, error = run_service(services.case_create, suite=suite, actor=request.user, **form.cleaned_data)
        if error is None:
            messages.success(request, f"The case “{form.cleaned_data['name']}” was added.")
            return redirect(reverse("admin:evaluations_suite_change", args=[suite.pk]))
        add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, case_form=form, status=400)


def case_import(model_admin, request, suite_id):
    suite = _suite(request, suite_id)
    model_admin.require(request, "evaluation_case.add", suite)
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            rows = parse_cases(upload.name, upload.read(MAX_BYTES + 1))
        except ValidationError as exc:
            add_errors_to_form(form, exc)
        else:
            cases, error = run_service(services.cases_import, suite=suite, actor=request.user, rows=rows)
            if error is None:
                messages.success(request, f"{len(cases)} case(s) imported.")
                return redirect(reverse("admin:evaluations_suite_change", args=[suite.pk]))
            add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, import_form=form, status=400)


def run_start(model_admin, request, suite_id):
    suite = _suite(request, suite_id)
    model_admin.require(request, "evaluation_run.add", suite)
    form = RunForm(request.POST, suite=suite)
    if form.is_valid():
        run, error = run_service(
            services.run_create, suite=suite, actor=request.user, release=form.cleaned_data["release"]
        )
        if error is None:
            return redirect(reverse("admin:evaluations_evalrun_change", args=[run.pk]))
        add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, run_form=form, status=400)


# --- Run -----------------------------------------------------------------------------------------------
def _run(request, run_id) -> EvalRun:
    return scoped_get(
        EvalRun.objects.select_related("suite__agent", "release", "requested_by"), request, pk=run_id
    )


def _results(run: EvalRun) -> list[CaseResult]:
    results = list(CaseResult.objects.filter(run=run).select_related("execution", "marked_by").order_by("id"))
    for result in results:
        result.judge_passed = judge_passed(result)
        # A list: client identifiers masked for everyone (agents.privacy); the execution's own page
        # shows its texts to those who may see them.
        result.case_name, result.error = mask_text(result.case_name), mask_text(result.error or "")
        result.verdicts = [
            {
                **verdict,
                **{
                    k: mask_text(verdict[k])
                    for k in ("reason", "reasoning")
                    if isinstance(verdict.get(k), str)
                },
            }
            for verdict in result.verdicts or []
        ]
    return results


def run_page(model_admin, request, run_id):
    """The run: progress (the ``progress`` fragment, polled while unfinished), results, marks."""
    run = _run(request, run_id)
    context = {
        "run": run,
        "results": _results(run) if run.is_finished or run.done else [],
        "poll_seconds": POLL_SECONDS,
        "progress_url": reverse("admin:evaluations_evalrun_progress", args=[run.pk]),
        "can_mark": model_admin.allows(request, "evaluation_run.mark", run),
        "other_runs": list(
            EvalRun.objects.filter(suite_id=run.suite_id).exclude(pk=run.pk).select_related("release")[:50]
        ),
    }
    context["percent"] = round(100 * run.done / run.total) if run.total else 100
    return htmx_partial(
        request,
        "admin/evaluations/evalrun/page.html",
        {**_chrome(model_admin, request, run), **context},
        partial="progress",
    )


def _chrome(model_admin, request, run):
    from django.contrib import admin

    return {
        **admin.site.each_context(request),
        "title": f"Run #{run.pk} — {run.suite.name} on release {run.release.number}",
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
    }


def result_mark(model_admin, request, result_id):
    result = scoped_get(CaseResult.objects.select_related("run"), request, pk=result_id)
    model_admin.require(request, "evaluation_run.mark", result.run)
    value = request.POST.get("passed", "")
    choices = {"pass": True, "fail": False, "clear": None}
    if value not in choices:
        messages.error(request, "Choose pass, fail or clear to mark the case.")
    else:
        _, error = run_service(services.result_mark, result=result, actor=request.user, passed=choices[value])
        if error is None:
            messages.success(
                request, f"“{result.case_name}” marked {value}." if value != "clear" else "Mark withdrawn."
            )
        else:
            messages.error(request, " ".join(error.messages))
    return redirect(
        reverse("admin:evaluations_evalrun_change", args=[result.run_id]) + f"#result-{result.pk}"
    )


def comparison_page(model_admin, request, run_id):
    run = _run(request, run_id)
    raw = request.GET.get("against", "")
    against = None
    if raw.isdigit() and len(raw) <= 18:
        against = (
            EvalRun.objects.filter(organization_id=run.organization_id, pk=int(raw))
            .select_related("release")
            .first()
        )
    if against is None:
        messages.error(request, "Choose a run of your organisation to compare with.")
        return redirect(reverse("admin:evaluations_evalrun_change", args=[run.pk]))
    context = {"run": run, "against": against, "comparison": run_comparison(run=run, against=against)}
    return render_admin_page(
        request,
        "admin/evaluations/evalrun/comparison.html",
        context,
        title=f"Run #{run.pk} compared with run #{against.pk}",
        model_admin=model_admin,
    )


# --- Save as test case (an action on agents' execution page) ---------------------------------------------
def save_as_case_action(request, execution, visible: bool) -> dict | None:
    """The "Save as test case" panel: shown to those who may add cases, for a completed or blocked run
    of an agent with suites."""
    if execution.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.BLOCKED):
        return None
    if not admin_decide(request, "evaluation_case.add"):
        return None
    suites = list(
        Suite.objects.filter(agent_id=execution.agent_id, organization_id=execution.organization_id)
    )
    return {
        "suites": suites,
        "url": reverse("admin:evaluations_suite_save_as_case", args=[execution.pk]),
    }


def save_as_case(model_admin, request, execution_id):
    execution = scoped_get(Execution.objects.select_related("agent"), request, pk=execution_id)
    model_admin.require(request, "evaluation_case.add", execution)
    raw = request.POST.get("suite", "")
    suite = None
    if raw.isdigit() and len(raw) <= 18:
        suite = Suite.objects.filter(organization_id=execution.organization_id, pk=int(raw)).first()
    back = reverse("admin:agents_execution_change", args=[execution.pk])
    if suite is None:
        messages.error(request, "Choose one of this agent's suites.")
        return redirect(back)
    from agents.privacy import may_see_identifiers

    visible = may_see_identifiers(get_admin_access(request), execution, opened_alone=True, user=request.user)
    case, error = run_service(
        services.case_from_execution,
        execution=execution,
        suite=suite,
        actor=request.user,
        visible=visible,
        must_pass=request.POST.get("must_pass") == "on",
    )
    if error is not None:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    messages.success(request, f"Saved as the case “{case.name}” of the suite “{suite.name}”.")
    return redirect(reverse("admin:evaluations_suite_change", args=[suite.pk]))
