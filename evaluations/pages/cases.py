"""A suite's cases: written by hand (added, edited, deleted), imported from a file, or saved from an
execution ("Save as test case" on its page, registered with agents' admin)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse

from agents.models import Execution, ExecutionStatus
from agents.privacy import may_see_identifiers
from evaluations import services
from evaluations.imports import MAX_BYTES, parse_cases
from evaluations.models import Case, Suite
from evaluations.pages.forms import CHECK_KINDS_HELP, CaseForm, ImportForm
from evaluations.pages.suites import get_suite, suite_page, suite_url
from guardrails.masking import mask_text
from prisma_glow.admin.base import add_errors_to_form, admin_decide, render_admin_page, run_service
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.ids import parse_id


# --- Cases ---------------------------------------------------------------------------------------------
def case_add(model_admin, request, suite_id):
    suite = get_suite(request, suite_id)
    model_admin.require(request, "evaluation_case.add", suite)
    form = CaseForm(request.POST)
    if form.is_valid():
        _, error = run_service(services.case_create, suite=suite, actor=request.user, **form.cleaned_data)
        if error is None:
            messages.success(request, f"The case “{form.cleaned_data['name']}” was added.")
            return redirect(reverse("admin:evaluations_suite_change", args=[suite.pk]))
        add_errors_to_form(form, error)
    return suite_page(model_admin, request, suite_id, case_form=form, status=400)


def _case(request, suite_id, case_id) -> Case:
    return scoped_get(
        Case.objects.select_related("suite__agent", "suite__organization"),
        request,
        pk=case_id,
        suite_id=suite_id,
    )


def case_edit(model_admin, request, suite_id, case_id):
    """A case's own page: the case editor prefilled (checks as indented JSON) → ``case_update``.

    The form holds the case's texts in full, identifiers included: whoever may change cases (editors
    and above) sees every identifier (``agents.privacy.sees_every_identifier``), so a save never writes
    masks over real values. tests/evaluations/test_admin_writes.py holds the policy to that."""
    case = _case(request, suite_id, case_id)
    model_admin.require(request, "evaluation_case.change", case.suite)
    status = 200
    if request.method == "POST":
        form = CaseForm(request.POST)
        if form.is_valid():
            _, error = run_service(services.case_update, case=case, actor=request.user, **form.cleaned_data)
            if error is None:
                messages.success(request, f"The case “{mask_text(form.cleaned_data['name'])}” was saved.")
                return redirect(suite_url(case.suite, f"case-{case.pk}"))
            add_errors_to_form(form, error)
        status = 400
    else:
        form = CaseForm(
            initial={
                "name": case.name,
                "input": case.input,
                "as_of": case.as_of,
                "must_pass": case.must_pass,
                "expected_output": case.expected_output,
                "checks": json.dumps(case.checks, indent=2, ensure_ascii=False),
            }
        )
    context = {
        "suite": case.suite,
        "case": case,
        "form": form,
        "check_kinds": CHECK_KINDS_HELP,
        "suite_url": suite_url(case.suite),
    }
    response = render_admin_page(
        request,
        "admin/evaluations/suite/case.html",
        context,
        title=f"Case “{mask_text(case.name)}” — {case.suite.name}",
        model_admin=model_admin,
    )
    response.status_code = status
    return response


def case_delete(model_admin, request, suite_id, case_id):
    """A confirmation page, then ``case_delete`` (past runs' results keep the case's name and verdicts)."""
    case = _case(request, suite_id, case_id)
    model_admin.require(request, "evaluation_case.delete", case.suite)
    name = mask_text(case.name)
    if request.method == "POST":
        _, error = run_service(services.case_delete, case=case, actor=request.user)
        if error is None:
            messages.success(request, f"The case “{name}” was deleted.")
        else:
            messages.error(request, " ".join(error.messages))
        return redirect(suite_url(case.suite, "cases-title"))
    context = {
        "object_name": f"the case “{name}” of the suite “{case.suite.name}”",
        "consequences": ["The results of past runs keep its name and verdicts."],
        "back_url": suite_url(case.suite, f"case-{case.pk}"),
        "confirm_label": "Delete the case",
    }
    return render_admin_page(
        request,
        "admin/evaluations/confirm_delete.html",
        context,
        title=f"Delete the case “{name}”?",
        model_admin=model_admin,
    )


def case_import(model_admin, request, suite_id):
    suite = get_suite(request, suite_id)
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


# --- Save as test case (an action on agents' execution page) ---------------------------------------------
def save_as_case_action(request, execution, visible: bool) -> dict | None:
    """The "Save as test case" panel: shown to those who may add cases, for a completed or blocked run;
    when the agent has no suite yet, a link to create one (back to this execution afterwards)."""
    if execution.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.BLOCKED):
        return None
    if not admin_decide(request, "evaluation_case.add"):
        return None
    suites = list(
        Suite.objects.filter(agent_id=execution.agent_id, organization_id=execution.organization_id)
    )
    add_url = ""
    if not suites and admin_decide(request, "evaluation_suite.add"):
        add_url = (
            reverse("admin:evaluations_suite_add") + f"?agent={execution.agent_id}&execution={execution.pk}"
        )
    return {
        "suites": suites,
        "url": reverse("admin:evaluations_suite_save_as_case", args=[execution.pk]),
        "add_suite_url": add_url,
    }


def save_as_case(model_admin, request, execution_id):
    execution = scoped_get(Execution.objects.select_related("agent"), request, pk=execution_id)
    model_admin.require(request, "evaluation_case.add", execution)
    suite_id = parse_id(request.POST.get("suite"))
    suite = None
    if suite_id is not None:
        suite = Suite.objects.filter(organization_id=execution.organization_id, pk=suite_id).first()
    back = reverse("admin:agents_execution_change", args=[execution.pk])
    if suite is None:
        messages.error(request, "Choose one of this agent's suites.")
        return redirect(back)
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
