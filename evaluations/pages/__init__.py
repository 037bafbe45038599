"""The staff pages of evaluations (``admin.py`` mounts them): a new suite; a suite's page (its
settings and judge, its requirement, judge agreement, cases, the case editor, import, starting a run),
its deletion, a case's edit and delete pages; a run's page (progress polled by HTMX while it is queued
or running; results with each check's verdict; people's marks), the comparison of two runs, and the
"Save as test case" action on an execution's page (registered with agents' admin).

Thin doors: every write is a service of ``evaluations.services``; permissions are the policy's
operations (``evaluation_*``); another organisation's rows answer 404 (``scoped_get``), and a form's
choices (agents, judge providers) are the organisation's own."""

from evaluations.pages.cases import (
    case_add,
    case_delete,
    case_edit,
    case_import,
    save_as_case,
    save_as_case_action,
)
from evaluations.pages.runs import comparison_page, result_mark, run_page
from evaluations.pages.suites import (
    requirement_page,
    requirement_remove,
    requirement_set,
    run_start,
    suite_add,
    suite_delete,
    suite_page,
    suite_settings,
)

__all__ = [
    "case_add",
    "case_delete",
    "case_edit",
    "case_import",
    "comparison_page",
    "requirement_page",
    "requirement_remove",
    "requirement_set",
    "result_mark",
    "run_page",
    "run_start",
    "save_as_case",
    "save_as_case_action",
    "suite_add",
    "suite_delete",
    "suite_page",
    "suite_settings",
]
