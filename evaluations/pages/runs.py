"""A run's page (progress polled by HTMX while it is queued or running; results with each check's
verdict; people's marks) and the comparison of two runs."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from evaluations import services
from evaluations.models import CaseResult, EvalRun
from evaluations.selectors import judge_passed, run_comparison
from guardrails.masking import mask_text
from prisma_glow.admin.base import render_admin_page, run_service
from prisma_glow.admin.htmx import htmx_partial
from prisma_glow.admin.scoping import scoped_get
from prisma_glow.ids import parse_id

#: How often the run page asks for progress while the run is queued or running (seconds).
POLL_SECONDS = 2


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
    against_id = parse_id(request.GET.get("against"))
    against = None
    if against_id is not None:
        against = (
            EvalRun.objects.filter(organization_id=run.organization_id, pk=against_id)
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
