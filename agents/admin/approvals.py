"""The tool calls' inbox (``/admin/tool-approvals/``; also a section of the approval inbox
``/admin/approvals/``, ``tool_calls_section``) and a tool call's own page (``…/<id>/``), where an
editor approves it (with its arguments edited or not) or refuses it with a reason.

The inbox's list is ``admin/agents/approvals/_tool_calls.html`` fed by
``agents.selectors.tool_approvals_pending`` and ``tool_approval_rows``: another inbox (activation
requests) can include the same list beside its own. The list masks client identifiers (a list:
``agents.privacy``); the call's page shows the exact arguments to those who may see them. Deciding goes
through ``agents.services.tool_approval_approve`` / ``tool_approval_refuse``, the API's path too.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from agents import services
from agents.models import ToolApproval, ToolApprovalStatus
from agents.privacy import may_see_identifiers, shown_data, shown_text
from agents.selectors import tool_approval_rows, tool_approvals_pending
from prisma_glow.admin.base import add_errors_to_form, admin_require, render_admin_page, run_service
from prisma_glow.admin.scoping import get_admin_access, scoped_get


class ApproveForm(forms.Form):
    """Approve as asked, or with the arguments edited (a JSON object)."""

    arguments = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "pg-code"}),
        help_text="The arguments the tool is called with, as JSON. Placeholders such as [IBAN_1] stand "
        "for the client's values, as the model wrote them. Leave unchanged to approve as asked.",
    )

    def clean_arguments(self):
        text = self.cleaned_data["arguments"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("The arguments must be a JSON object.")
        return value


class RefuseForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the call is refused: the model reads it as the call's result, the trace keeps it.",
    )


def _approvals(request):
    return ToolApproval.objects.select_related("execution__agent", "tool", "decided_by")


def inbox(request):
    """The organisation's tool calls waiting for a decision, the first to expire first."""
    admin_require(request, "tool_call.view")
    access = get_admin_access(request)
    rows = tool_approval_rows(tool_approvals_pending(organization=access.organization))
    return render_admin_page(
        request,
        "admin/agents/approvals/inbox.html",
        {"tool_approval_rows": rows, "can_decide": access.may("tool_call.decide")},
        title="Approval inbox",
    )


def tool_calls_section(request, organization) -> dict | None:
    """The approval inbox's section of tool calls (``agents.admin.activation_pages.register_inbox_section``):
    the pending ones, for members who may see them (None leaves the section out)."""
    access = get_admin_access(request)
    if not access.may("tool_call.view"):
        return None
    return {
        "tool_approval_rows": tool_approval_rows(tool_approvals_pending(organization=organization)),
        "can_decide": access.may("tool_call.decide"),
    }


def decide_approval(request, approval: ToolApproval, action: str, data) -> tuple[bool, forms.Form]:
    """Apply a posted decision (``action``: approve or refuse) through the services; (done, form)."""
    if action == "refuse":
        form = RefuseForm(data)
        if not form.is_valid():
            return False, form
        _, error = run_service(
            services.tool_approval_refuse,
            approval=approval,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
    else:
        form = ApproveForm(data)
        if not form.is_valid():
            return False, form
        _, error = run_service(
            services.tool_approval_approve,
            approval=approval,
            actor=request.user,
            arguments=form.cleaned_data["arguments"],
        )
    if error is not None:
        add_errors_to_form(form, error)
        return False, form
    verb = "refused" if action == "refuse" else "approved"
    messages.success(
        request, f"The call of “{approval.tool_name}” was {verb}; the run resumes in the background."
    )
    return True, form


def approval_page(request, approval_id: int):
    """One tool call: the run's question, the exact arguments, and the decision's forms."""
    admin_require(request, "tool_call.view")
    approval = scoped_get(_approvals(request), request, pk=approval_id)
    access = get_admin_access(request)
    approve_form, refuse_form, status = None, None, 200
    if request.method == "POST":
        admin_require(request, "tool_call.decide")
        action = request.POST.get("action", "approve")
        done, form = decide_approval(request, approval, action, request.POST)
        if done:
            target = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(
                target, {request.get_host()}, require_https=request.is_secure()
            ):
                target = reverse("admin:tool_approvals")
            return HttpResponseRedirect(target)
        status = 400
        if action == "refuse":
            refuse_form = form
        else:
            approve_form = form
    execution = approval.execution
    visible = may_see_identifiers(access, execution, opened_alone=True, user=request.user)
    arguments = shown_data(execution, approval.effective_arguments, visible=visible)
    if approve_form is None:
        approve_form = ApproveForm(initial={"arguments": json.dumps(arguments, indent=2, ensure_ascii=False)})
    response = render_admin_page(
        request,
        "admin/agents/approvals/approval.html",
        {
            "approval": approval,
            "execution": execution,
            "question": shown_text(execution, execution.input, visible=visible),
            "arguments": json.dumps(
                shown_data(execution, approval.arguments, visible=visible), indent=2, ensure_ascii=False
            ),
            "edited_arguments": None
            if approval.edited_arguments is None
            else json.dumps(shown_data(execution, approval.edited_arguments, visible=visible), indent=2),
            "identifiers_masked": not visible,
            "pending": approval.status == ToolApprovalStatus.PENDING,
            "can_decide": access.may("tool_call.decide") and visible,
            "approve_form": approve_form,
            "refuse_form": refuse_form or RefuseForm(),
        },
        title=f"Tool call: {approval.tool_name}",
    )
    response.status_code = status
    return response
