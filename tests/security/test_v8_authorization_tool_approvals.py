"""ASVS 5.0 level 2: who may decide a tool call that waits for approval, and in what order. Detailed
behaviour: tests/agents/runtime/test_tool_approval.py (API, inbox, console, expiry) and
test_tool_approval_worker.py (the resumed run in a worker process)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from agents import services
from agents.models import Execution, ToolApproval
from prisma_glow.exceptions import ConflictError
from tests.conftest import client_for
from tests.factories import APIKeyFactory, ToolApprovalFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


def test_only_a_signed_in_editor_decides(org, editor, viewer):
    """ASVS 5.0 V8.2.1: deciding a tool call is allowed to editors and above signed in; a viewer gets
    403, an API key (whatever its scopes) 403 `session_required`, through the API, the inbox and the
    console alike, and the service itself refuses a key."""
    approval = ToolApprovalFactory(execution__agent__organization=org)
    key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    url = f"/api/v1/tool-approvals/{approval.pk}/"
    assert_error(client_for(viewer).post(url + "approve/", {}, format="json"), 403)
    assert assert_error(client_for(key=key.plaintext).post(url + "approve/", {}, format="json"), 403)[
        "code"
    ] == ("session_required")
    assert (
        login(viewer).post(f"/admin/tool-approvals/{approval.pk}/", {"action": "approve"}).status_code == 403
    )
    console = login(viewer).post(
        f"/admin/console/tool-approvals/{approval.pk}/decide/", {"action": "approve"}
    )
    assert console.status_code == 403
    assert Client().post(f"/admin/tool-approvals/{approval.pk}/", {"action": "approve"}).status_code == 302
    with pytest.raises(PermissionDenied):
        services.tool_approval_approve(approval=approval, actor=key)
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_another_organisations_call_cannot_be_read_or_decided(org, other_org, editor):
    """ASVS 5.0 V8.2.2: a tool call of another organisation is a 404 through every door (its id says
    nothing), and it stays pending."""
    theirs = ToolApprovalFactory(execution__agent__organization=other_org)
    client = client_for(editor)
    assert_error(client.get(f"/api/v1/tool-approvals/{theirs.pk}/"), 404)
    assert_error(
        client.post(f"/api/v1/tool-approvals/{theirs.pk}/refuse/", {"reason": "x"}, format="json"), 404
    )
    assert login(editor).get(f"/admin/tool-approvals/{theirs.pk}/").status_code == 404
    assert login(editor).post(f"/admin/console/tool-approvals/{theirs.pk}/decide/", {}).status_code == 404
    assert theirs.pk not in [row["id"] for row in client.get("/api/v1/tool-approvals/").json()["results"]]
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_a_call_is_decided_once_and_not_after_it_expired(org, editor):
    """ASVS 5.0 V2.3.1: the decision follows the flow's order — once decided, a second decision is
    refused (409); after its deadline a decision is refused and the call expires, its run failed."""
    approval = ToolApprovalFactory(execution__agent__organization=org)
    services.tool_approval_refuse(approval=approval, actor=editor, reason="Not now.")
    with pytest.raises(ConflictError):
        services.tool_approval_approve(approval=approval, actor=editor)
    late = ToolApprovalFactory(
        execution__agent__organization=org, expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with pytest.raises(ConflictError, match="expired"):
        services.tool_approval_approve(approval=late, actor=editor)
    assert ToolApproval.objects.get(pk=late.pk).status == "expired"
    assert Execution.objects.get(pk=late.execution_id).status == "failed"
