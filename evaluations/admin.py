"""Staff pages of the evaluations app: lists of suites, runs and requirements; a new suite, a suite's
page (settings, requirement, case editor, import, starting a run), its deletion, a case's edit and
delete pages, a run's page (progress, results, marks) and the comparison of two runs are
``evaluations.pages``; "Save as test case" is added to agents' execution page through its
``register_execution_action`` hook (agents may not import this app)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.admin.executions import register_execution_action
from evaluations import pages
from evaluations.models import EvalRun, Requirement, Suite
from prisma_glow.admin.base import OrganizationScopedAdmin


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Nothing is added, changed or deleted from these pages."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Suite)
class SuiteAdmin(OrganizationScopedAdmin):
    """An agent's suites of test cases: added, changed and deleted through ``evaluations.pages`` (the
    suite's own page holds its settings), with the policy's ``evaluation_suite.*`` operations."""

    list_display = ["name", "agent", "created_at"]
    list_select_related = ["agent"]
    search_fields = ["name", "description"]
    readonly_fields = ["agent", "name", "description", "created_at", "updated_at"]
    fields = readonly_fields
    policy_resource = "evaluation_suite"

    def get_urls(self):
        view = self.admin_site.admin_view
        get_or_post = require_http_methods(["GET", "POST"])

        def page(func, allowed=require_POST):
            return view(allowed(lambda request, **kwargs: func(self, request, *kwargs.values())))

        custom = [
            path("<int:suite_id>/settings/", page(pages.suite_settings), name="evaluations_suite_settings"),
            path(
                "<int:suite_id>/requirement/",
                page(pages.requirement_set),
                name="evaluations_suite_requirement",
            ),
            path(
                "<int:suite_id>/requirement/delete/",
                page(pages.requirement_remove),
                name="evaluations_suite_requirement_delete",
            ),
            path(
                "<int:suite_id>/cases/<int:case_id>/",
                page(pages.case_edit, get_or_post),
                name="evaluations_suite_case_edit",
            ),
            path(
                "<int:suite_id>/cases/<int:case_id>/delete/",
                page(pages.case_delete, get_or_post),
                name="evaluations_suite_case_delete",
            ),
            path("<int:suite_id>/cases/add/", page(pages.case_add), name="evaluations_suite_case_add"),
            path("<int:suite_id>/import/", page(pages.case_import), name="evaluations_suite_import"),
            path("<int:suite_id>/run/", page(pages.run_start), name="evaluations_suite_run"),
            path(
                "save-as-case/<int:execution_id>/",
                page(pages.save_as_case),
                name="evaluations_suite_save_as_case",
            ),
        ]
        return custom + super().get_urls()

    # Django's add and delete views take any method; these pages take GET and POST only (405).
    @method_decorator(require_http_methods(["GET", "POST"]))
    def add_view(self, request, form_url="", extra_context=None):
        return pages.suite_add(self, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return pages.suite_page(self, request, object_id)

    @method_decorator(require_http_methods(["GET", "POST"]))
    def delete_view(self, request, object_id, extra_context=None):
        return pages.suite_delete(self, request, object_id)


@admin.register(EvalRun)
class EvalRunAdmin(ReadOnlyAdmin):
    """Runs of a suite against a release, with progress and results."""

    list_display = [
        "id",
        "suite",
        "release",
        "status",
        "progress",
        "pass_rate",
        "must_pass_failures",
        "created_at",
    ]
    list_select_related = ["suite", "release__agent"]
    list_filter = ["status"]
    readonly_fields = [
        "suite",
        "release",
        "status",
        "error",
        "progress",
        "threshold",
        "pass_rate",
        "must_pass_failures",
        "cost",
        "latency_p50_ms",
        "latency_p95_ms",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields
    policy_resource = "evaluation_run"

    def get_urls(self):
        view = self.admin_site.admin_view

        def page(func, allowed=require_GET):
            return view(allowed(lambda request, **kwargs: func(self, request, *kwargs.values())))

        custom = [
            path("<int:run_id>/progress/", page(pages.run_page), name="evaluations_evalrun_progress"),
            path("<int:run_id>/compare/", page(pages.comparison_page), name="evaluations_evalrun_compare"),
            path(
                "results/<int:result_id>/mark/",
                page(pages.result_mark, require_POST),
                name="evaluations_caseresult_mark",
            ),
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return pages.run_page(self, request, object_id)

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.done} / {obj.total}"


@admin.register(Requirement)
class RequirementAdmin(ReadOnlyAdmin):
    """Which suite gates each agent's activation: a read-only list whose rows lead to the required
    suite's page, where the requirement is set, changed and removed."""

    list_display = ["agent", "suite", "threshold"]
    list_select_related = ["agent", "suite"]
    readonly_fields = ["agent", "suite", "threshold", "created_at", "updated_at"]
    fields = readonly_fields
    policy_resource = "evaluation_requirement"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return pages.requirement_page(self, request, object_id)


register_execution_action(template="admin/evaluations/save_as_case.html", context=pages.save_as_case_action)
