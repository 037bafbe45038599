"""A suite's pages: a new suite, the suite's page (settings and judge, requirement, judge agreement,
cases, the case editor, import, starting a run), its deletion, and the requirement set from it."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from agents.models import Execution
from evaluations import services
from evaluations.models import Case, EvalRun, Requirement, Suite
from evaluations.pages.forms import (
    CHECK_KINDS_HELP,
    CaseForm,
    ImportForm,
    RunForm,
    SuiteForm,
    ThresholdForm,
    percent,
)
from evaluations.selectors import judge_agreement
from guardrails.masking import mask_text
from prisma_glow.admin.base import add_errors_to_form, render_admin_page, run_service
from prisma_glow.admin.scoping import get_admin_access, scope_queryset, scoped_get
from prisma_glow.ids import parse_id


# --- Suite ---------------------------------------------------------------------------------------------
def get_suite(request, suite_id) -> Suite:
    return scoped_get(Suite.objects.select_related("agent", "judge_provider"), request, pk=suite_id)


def suite_url(suite: Suite, anchor: str = "") -> str:
    return reverse("admin:evaluations_suite_change", args=[suite.pk]) + (f"#{anchor}" if anchor else "")


def _cases(suite: Suite) -> list[Case]:
    cases = list(Case.objects.filter(suite=suite).order_by("id"))
    for case in cases:
        # A list: client identifiers masked for everyone (agents.privacy), in the checks too.
        case.checks_text = mask_text(json.dumps(case.checks, ensure_ascii=False))
        case.shown_name, case.shown_input = mask_text(case.name), mask_text(case.input)
    return cases


def suite_add(model_admin, request):
    """A new suite (``suite_create``): its agent (``?agent=`` chooses it), name, description, judge.
    From an execution's "Save as test case" panel (``?execution=``), back to that execution."""
    model_admin.require(request, "evaluation_suite.add")
    status = 200
    if request.method == "POST":
        form = SuiteForm(request.POST, request=request)
        if form.is_valid():
            data = dict(form.cleaned_data)
            execution_id = data.pop("execution")
            suite, error = run_service(
                services.suite_create,
                organization=get_admin_access(request).organization,
                actor=request.user,
                **data,
            )
            if error is None:
                messages.success(request, f"The suite “{suite.name}” was created.")
                return redirect(_after_suite_add(request, suite, execution_id))
            add_errors_to_form(form, error)
        status = 400
    else:
        # A bad ?agent= or ?execution= is dropped, not put in the form: the hidden execution field's
        # error would be shown nowhere.
        initial = {
            name: value
            for name in ("agent", "execution")
            if (value := parse_id(request.GET.get(name))) is not None
        }
        form = SuiteForm(initial=initial, request=request)
    # Cancel goes back where the page was opened from: an execution's panel, else the suites list.
    opened_from = parse_id((request.POST if request.method == "POST" else request.GET).get("execution"))
    cancel_url = _execution_panel(request, opened_from) or reverse("admin:evaluations_suite_changelist")
    response = render_admin_page(
        request,
        "admin/evaluations/suite/add.html",
        {"form": form, "cancel_url": cancel_url},
        title="Add suite",
        model_admin=model_admin,
    )
    response.status_code = status
    return response


def _after_suite_add(request, suite: Suite, execution_id: int | None) -> str:
    """The execution the suite was created for (one of its agent's, in scope), else the suite."""
    return _execution_panel(request, execution_id, agent_id=suite.agent_id) or suite_url(suite)


def _execution_panel(request, execution_id: int | None, *, agent_id: int | None = None) -> str | None:
    """The "Save as test case" panel of an execution in the request's organisation (of ``agent_id``
    when given), or None: where the new-suite page opened from an execution goes back to."""
    if execution_id is None or not 0 < execution_id < 2**63:
        return None
    executions = scope_queryset(Execution.objects.all(), request, all_for_superuser=False)
    if agent_id is not None:
        executions = executions.filter(agent_id=agent_id)
    execution = executions.filter(pk=execution_id).first()
    if execution is None:
        return None
    return reverse("admin:agents_execution_change", args=[execution.pk]) + "#save-as-case"


def suite_page(
    model_admin,
    request,
    suite_id,
    *,
    case_form=None,
    import_form=None,
    run_form=None,
    settings_form=None,
    threshold_form=None,
    status=200,
):
    suite = get_suite(request, suite_id)
    # One requirement per agent: this suite's, or another suite's (then this one may replace it).
    agent_requirement = Requirement.objects.filter(agent_id=suite.agent_id).select_related("suite").first()
    requirement = agent_requirement if agent_requirement and agent_requirement.suite_id == suite.pk else None
    agreement = judge_agreement(suite=suite)
    if threshold_form is None:
        # The agent's threshold, whichever suite it requires: "Require this suite instead" keeps it.
        initial = {"threshold": percent(agent_requirement.threshold)} if agent_requirement else {}
        threshold_form = ThresholdForm(initial=initial)
    context = {
        "suite": suite,
        "cases": _cases(suite),
        "runs": list(
            EvalRun.objects.filter(suite=suite).select_related("release").order_by("-created_at")[:20]
        ),
        "requirement": requirement,
        "other_requirement": agent_requirement if requirement is None else None,
        "agreement": agreement,
        "can_write": model_admin.allows(request, "evaluation_case.add", suite),
        "can_change_cases": model_admin.allows(request, "evaluation_case.change", suite),
        "can_delete_cases": model_admin.allows(request, "evaluation_case.delete", suite),
        "can_change": model_admin.allows(request, "evaluation_suite.change", suite),
        "can_delete": model_admin.allows(request, "evaluation_suite.delete", suite),
        "can_require": model_admin.allows(
            request, f"evaluation_requirement.{'change' if agent_requirement else 'add'}", suite
        ),
        "can_unrequire": requirement is not None
        and model_admin.allows(request, "evaluation_requirement.delete", requirement),
        "can_run": model_admin.allows(request, "evaluation_run.add", suite),
        "case_form": case_form or CaseForm(),
        "import_form": import_form or ImportForm(),
        "run_form": run_form or RunForm(suite=suite),
        "settings_form": settings_form
        or SuiteForm(
            request=request,
            suite=suite,
            initial={
                "name": suite.name,
                "description": suite.description,
                "judge_provider": suite.judge_provider_id,
                "judge_model": suite.judge_model,
            },
        ),
        "threshold_form": threshold_form,
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


def suite_settings(model_admin, request, suite_id):
    """Rename or describe the suite, or choose its judge (``suite_update``; its agent is fixed)."""
    suite = get_suite(request, suite_id)
    model_admin.require(request, "evaluation_suite.change", suite)
    form = SuiteForm(request.POST, request=request, suite=suite)
    if form.is_valid():
        _, error = run_service(services.suite_update, suite=suite, actor=request.user, **form.cleaned_data)
        if error is None:
            messages.success(request, f"The suite “{form.cleaned_data['name']}” was saved.")
            return redirect(suite_url(suite))
        add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, settings_form=form, status=400)


def suite_delete(model_admin, request, suite_id):
    """A confirmation page (what goes with the suite), then ``suite_delete``; its refusals (the suite
    has runs, or gates its agent's activation) are shown on the suite's page, nothing deleted."""
    suite = get_suite(request, suite_id)
    model_admin.require(request, "evaluation_suite.delete", suite)
    if request.method == "POST":
        _, error = run_service(services.suite_delete, suite=suite, actor=request.user)
        if error is not None:
            messages.error(request, " ".join(error.messages))
            return redirect(suite_url(suite))
        messages.success(request, f"The suite “{suite.name}” and its cases were deleted.")
        return redirect(reverse("admin:evaluations_suite_changelist"))
    context = {
        "object_name": f"the suite “{suite.name}” of {suite.agent.name}",
        "consequences": [f"{Case.objects.filter(suite=suite).count()} case(s) with it"],
        "back_url": suite_url(suite),
        "confirm_label": "Delete the suite",
    }
    return render_admin_page(
        request,
        "admin/evaluations/confirm_delete.html",
        context,
        title=f"Delete the suite “{suite.name}”?",
        model_admin=model_admin,
    )


# --- Requirement ---------------------------------------------------------------------------------------
def requirement_set(model_admin, request, suite_id):
    """Require this suite before the agent's releases go live, with a threshold (``requirement_create``),
    or change the agent's requirement to it or its threshold (``requirement_update``)."""
    suite = get_suite(request, suite_id)
    existing = Requirement.objects.filter(agent_id=suite.agent_id).first()
    model_admin.require(
        request, f"evaluation_requirement.{'change' if existing else 'add'}", existing or suite
    )
    form = ThresholdForm(request.POST)
    if form.is_valid():
        if existing is None:
            _, error = run_service(
                services.requirement_create,
                organization=suite.organization,
                actor=request.user,
                agent=suite.agent,
                suite=suite,
                threshold=form.share(),
            )
        else:
            _, error = run_service(
                services.requirement_update,
                requirement=existing,
                actor=request.user,
                suite=suite,
                threshold=form.share(),
            )
        if error is None:
            messages.success(
                request,
                f"The agent's releases now need a run of “{suite.name}” passing "
                f"{percent(form.share())} % of its cases to go live.",
            )
            return redirect(suite_url(suite, "requirement"))
        add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, threshold_form=form, status=400)


def requirement_remove(model_admin, request, suite_id):
    """Stop requiring this suite (``requirement_delete``)."""
    suite = get_suite(request, suite_id)
    requirement = Requirement.objects.filter(agent_id=suite.agent_id, suite=suite).first()
    model_admin.require(request, "evaluation_requirement.delete", requirement or suite)
    if requirement is None:
        messages.error(request, "This suite is not required before activation: there is nothing to stop.")
    else:
        _, error = run_service(services.requirement_delete, requirement=requirement, actor=request.user)
        if error is None:
            messages.success(request, f"“{suite.name}” is no longer required before activation.")
        else:
            messages.error(request, " ".join(error.messages))
    return redirect(suite_url(suite, "requirement"))


def requirement_page(model_admin, request, requirement_id):
    """The requirements list's rows lead to the required suite's page, where it is changed."""
    requirement = scoped_get(Requirement.objects.all(), request, pk=requirement_id)
    model_admin.require(request, "evaluation_requirement.view", requirement)
    return redirect(reverse("admin:evaluations_suite_change", args=[requirement.suite_id]) + "#requirement")


def run_start(model_admin, request, suite_id):
    suite = get_suite(request, suite_id)
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
