"""What the staff pages of evaluations write: a new suite (from the list, or from an execution's "Save
as test case" panel), a suite's settings and its deletion, a case's edit and delete pages, and the
requirement that gates the agent's activation. Each through its service (audited); viewers write
nothing, editors do not touch requirements, another organisation's rows and choices are 404 or a
form error, never a write."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.messages import get_messages

from agents.privacy import sees_every_identifier
from agents.runtime import execute
from evaluations import services
from evaluations.models import Case, Requirement, Suite
from prisma_glow import policy
from prisma_glow.admin.scoping import AdminAccess
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Role
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
    MembershipFactory,
    ModelProviderFactory,
    UserFactory,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
IBAN_MASKED = "DE89 •••• 3000"
ADD_URL = "/admin/evaluations/suite/add/"


def suite_url(suite):
    return f"/admin/evaluations/suite/{suite.pk}/change/"


def case_url(case, action=""):
    return f"/admin/evaluations/suite/{case.suite_id}/cases/{case.pk}/{action}"


def audited(action, user) -> AuditEvent:
    return AuditEvent.objects.get(action=action, actor_user=user)


def errors(response, form="form") -> dict:
    return response.context[form].errors


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def provider(vat_agent):
    return ModelProviderFactory(organization=vat_agent.organization, name="Judge house")


@pytest.fixture
def foreign(other_org):
    """Another organisation's agent and provider."""
    return SimpleNamespace(
        agent=AgentFactory(organization=other_org, name="Their agent"),
        provider=ModelProviderFactory(organization=other_org, name="Their provider"),
    )


# --- New suite -----------------------------------------------------------------------------------------
def test_an_editor_creates_a_suite_from_the_list(staff_client, editor, vat_agent, provider):
    listing = staff_client.get("/admin/evaluations/suite/").content.decode()
    assert f'href="{ADD_URL}"' in listing  # Django's "Add suite" object tool
    form = staff_client.get(f"{ADD_URL}?agent={vat_agent.pk}")
    assert form.status_code == 200
    assert form.context["form"]["agent"].value() == vat_agent.pk
    response = staff_client.post(
        ADD_URL,
        {
            "agent": vat_agent.pk,
            "name": "Regression",
            "description": "Questions clients asked",
            "judge_provider": provider.pk,
            "judge_model": "gpt-judge",
        },
    )
    suite = Suite.objects.get()
    assert response.status_code == 302 and response["Location"] == suite_url(suite)
    assert (suite.agent, suite.organization) == (vat_agent, vat_agent.organization)
    assert (suite.judge_provider, suite.judge_model, suite.description) == (
        provider,
        "gpt-judge",
        "Questions clients asked",
    )
    assert audited("evaluation_suite.create", editor).after["name"] == "Regression"
    page = staff_client.get(suite_url(suite)).content.decode()
    assert "Judge house · gpt-judge" in page


def test_a_blank_judge_is_the_organisations_default_provider(staff_client, vat_agent):
    response = staff_client.post(ADD_URL, {"agent": vat_agent.pk, "name": "Smoke"})
    assert response.status_code == 302
    assert Suite.objects.get().judge_provider is None
    assert (
        "The organisation&#x27;s default provider" in staff_client.get(response["Location"]).content.decode()
    )


def test_a_new_suite_refuses_bad_input_beside_its_fields(staff_client, vat_agent, suite, foreign):
    empty = staff_client.post(ADD_URL, {"agent": vat_agent.pk, "name": ""})
    assert empty.status_code == 400 and errors(empty)["name"] == ["This field is required."]
    duplicate = staff_client.post(ADD_URL, {"agent": vat_agent.pk, "name": suite.name})
    assert duplicate.status_code == 400
    assert errors(duplicate)["name"] == ["This agent already has a suite with this name."]
    theirs = staff_client.post(ADD_URL, {"agent": foreign.agent.pk, "name": "Sneaky"})
    assert theirs.status_code == 400 and "agent" in errors(theirs)
    judge = staff_client.post(
        ADD_URL, {"agent": vat_agent.pk, "name": "Sneaky", "judge_provider": foreign.provider.pk}
    )
    assert judge.status_code == 400 and "judge_provider" in errors(judge)
    # Only the organisation's own agents and providers are offered.
    html = staff_client.get(ADD_URL).content.decode()
    assert "Their agent" not in html and "Their provider" not in html
    assert list(Suite.objects.values_list("name", flat=True)) == [suite.name]


def test_viewers_may_not_create_suites_and_anonymous_signs_in(viewer_admin_client, client, vat_agent):
    assert (
        'href="/admin/evaluations/suite/add/"'
        not in viewer_admin_client.get("/admin/evaluations/suite/").content.decode()
    )
    assert viewer_admin_client.get(ADD_URL).status_code == 403
    assert viewer_admin_client.post(ADD_URL, {"agent": vat_agent.pk, "name": "x"}).status_code == 403
    anonymous = client.post(ADD_URL, {"agent": vat_agent.pk, "name": "x"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert not Suite.objects.exists()


def test_anonymous_is_sent_to_sign_in_from_every_write(client, suite, cases):
    case = cases[0]
    base = f"/admin/evaluations/suite/{suite.pk}/"
    for url in (
        f"{base}settings/",
        f"{base}delete/",
        f"{base}requirement/",
        f"{base}requirement/delete/",
        case_url(case),
        case_url(case, "delete/"),
    ):
        response = client.post(url, {"name": "x", "threshold": "1"})
        assert response.status_code == 302 and "/login/" in response["Location"], url
    suite.refresh_from_db()
    assert suite.name == "VAT regression" and Case.objects.count() == 4
    assert not Requirement.objects.exists()


def test_methods_are_enforced(staff_client, admin_role_client, suite, cases):
    case = cases[0]
    assert staff_client.put(ADD_URL).status_code == 405
    assert staff_client.delete(f"/admin/evaluations/suite/{suite.pk}/delete/").status_code == 405
    assert staff_client.patch(case_url(case)).status_code == 405
    assert staff_client.put(case_url(case, "delete/")).status_code == 405
    for path in ("settings/", "requirement/", "requirement/delete/"):
        url = f"/admin/evaluations/suite/{suite.pk}/{path}"
        assert admin_role_client.get(url).status_code == 405, url
    assert Suite.objects.filter(pk=suite.pk).exists() and Case.objects.count() == 4
    assert not Requirement.objects.exists()


# --- From an execution's "Save as test case" panel -------------------------------------------------------
def test_an_agent_without_a_suite_offers_to_create_one_and_comes_back(staff_client, viewer, vat_agent):
    execution = execute(vat_agent, REVERSE_CHARGE_Q, source="api")
    page = f"/admin/agents/execution/{execution.pk}/change/"
    html = staff_client.get(page).content.decode()
    link = f"{ADD_URL}?agent={vat_agent.pk}&amp;execution={execution.pk}"
    assert "Create a suite for this agent" in html and f'href="{link}"' in html
    form = staff_client.get(link.replace("&amp;", "&"))
    assert form.context["form"]["agent"].value() == vat_agent.pk
    assert f'name="execution" value="{execution.pk}"' in form.content.decode()
    assert f'href="{page}#save-as-case">Cancel</a>' in form.content.decode()
    response = staff_client.post(
        ADD_URL, {"agent": vat_agent.pk, "name": "From runs", "execution": execution.pk}
    )
    assert response.status_code == 302 and response["Location"] == f"{page}#save-as-case"
    suite = Suite.objects.get()
    html = staff_client.get(page).content.decode()
    assert f'<option value="{suite.pk}">From runs</option>' in html
    assert "Create a suite for this agent" not in html


@pytest.mark.parametrize("bad", ["²", "abc", "-1", "1" + "0" * 18])
def test_a_bad_agent_or_execution_in_the_link_is_dropped(staff_client, vat_agent, bad):
    """A link to the new-suite page with a bad ``?agent=`` or ``?execution=`` (a Unicode digit:
    ``"²".isdigit()`` is true) opens the form without it, never a 500 nor a 400 whose error is on
    a hidden field."""
    response = staff_client.get(f"{ADD_URL}?agent={bad}&execution={bad}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["agent"].value() is None and form["execution"].value() is None
    assert 'name="execution" value' not in response.content.decode()
    saved = staff_client.post(ADD_URL, {"agent": vat_agent.pk, "name": "Fine", "execution": ""})
    assert saved.status_code == 302 and saved["Location"] == suite_url(Suite.objects.get())


def test_cancel_goes_back_to_the_execution_only_when_it_is_in_scope(staff_client, vat_agent, foreign):
    """Opened from an execution's panel, Cancel returns to it (also after a refused POST); another
    organisation's execution, or none, sends Cancel to the suites list."""
    mine = execute(vat_agent, REVERSE_CHARGE_Q, source="api")
    theirs = ExecutionFactory(agent=foreign.agent)
    back = f'href="/admin/agents/execution/{mine.pk}/change/#save-as-case">Cancel</a>'
    to_list = 'href="/admin/evaluations/suite/">Cancel</a>'
    assert back in staff_client.get(f"{ADD_URL}?agent={vat_agent.pk}&execution={mine.pk}").content.decode()
    refused = staff_client.post(ADD_URL, {"agent": vat_agent.pk, "name": "", "execution": mine.pk})
    assert refused.status_code == 400 and back in refused.content.decode()
    for url in (f"{ADD_URL}?execution={theirs.pk}", ADD_URL, f"{ADD_URL}?execution=99999"):
        html = staff_client.get(url).content.decode()
        assert to_list in html and f"/admin/agents/execution/{theirs.pk}/" not in html, url


def test_coming_back_goes_only_to_an_execution_of_the_suites_agent(staff_client, vat_agent, org):
    other_agent = AgentFactory(organization=org, name="Other adviser")
    execution = execute(vat_agent, REVERSE_CHARGE_Q, source="api")
    response = staff_client.post(
        ADD_URL, {"agent": other_agent.pk, "name": "Elsewhere", "execution": execution.pk}
    )
    assert response["Location"] == suite_url(Suite.objects.get())


# --- Settings ------------------------------------------------------------------------------------------
def test_an_editor_changes_the_settings_but_not_the_agent(
    staff_client, editor, suite, provider, foreign, org
):
    url = f"/admin/evaluations/suite/{suite.pk}/settings/"
    html = staff_client.get(suite_url(suite)).content.decode()
    assert "Edit settings" in html and f'action="{url}"' in html
    other_agent = AgentFactory(organization=org, name="Other adviser")
    data = {
        "name": "Renamed",
        "description": "Now with a judge",
        "judge_provider": provider.pk,
        "judge_model": "judge-2",
        "agent": other_agent.pk,
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302 and response["Location"] == suite_url(suite)
    suite.refresh_from_db()
    assert (suite.name, suite.judge_provider, suite.judge_model) == ("Renamed", provider, "judge-2")
    assert suite.agent.name == "VAT adviser"
    event = audited("evaluation_suite.update", editor)
    assert event.before["name"] == "VAT regression" and event.after["name"] == "Renamed"
    bad = staff_client.post(url, {"name": "", "judge_provider": foreign.provider.pk})
    assert bad.status_code == 400
    assert set(errors(bad, "settings_form")) == {"name", "judge_provider"}
    suite.refresh_from_db()
    assert suite.name == "Renamed" and suite.judge_provider == provider


def test_a_superuser_chooses_a_judge_among_the_suites_organisations_providers(
    org, provider, foreign, other_org
):
    """A superuser acting for one organisation opens another's suite: its settings offer that
    organisation's providers (and save one), never those of the organisation in the session."""
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    MembershipFactory(user=root, organization=org, role="owner")  # the session's organisation
    theirs = services.suite_create(organization=other_org, actor=None, agent=foreign.agent, name="Theirs")
    client = login(root)
    page = client.get(suite_url(theirs))
    assert page.status_code == 200
    assert list(page.context["settings_form"].fields["judge_provider"].queryset) == [foreign.provider]
    url = f"/admin/evaluations/suite/{theirs.pk}/settings/"
    wrong = client.post(url, {"name": "Theirs", "judge_provider": provider.pk})
    assert wrong.status_code == 400 and "judge_provider" in errors(wrong, "settings_form")
    saved = client.post(url, {"name": "Theirs", "judge_provider": foreign.provider.pk})
    assert saved.status_code == 302
    theirs.refresh_from_db()
    assert theirs.judge_provider == foreign.provider


def test_a_duplicate_name_is_a_field_error_in_the_settings(staff_client, suite, vat_agent):
    services.suite_create(organization=suite.organization, actor=None, agent=vat_agent, name="Smoke")
    response = staff_client.post(f"/admin/evaluations/suite/{suite.pk}/settings/", {"name": "Smoke"})
    assert response.status_code == 400
    assert errors(response, "settings_form")["name"] == ["This agent already has a suite with this name."]


def test_viewers_see_no_settings_and_may_not_post_them(viewer_admin_client, suite):
    html = viewer_admin_client.get(suite_url(suite)).content.decode()
    assert "Edit settings" not in html and "Delete suite" not in html
    url = f"/admin/evaluations/suite/{suite.pk}/settings/"
    assert viewer_admin_client.post(url, {"name": "Mine"}).status_code == 403
    suite.refresh_from_db()
    assert suite.name == "VAT regression"


# --- Deleting a suite ----------------------------------------------------------------------------------
def test_deleting_a_suite_says_what_goes_with_it(staff_client, editor, suite, cases):
    url = f"/admin/evaluations/suite/{suite.pk}/delete/"
    assert f'href="{url}"' in staff_client.get(suite_url(suite)).content.decode()
    confirm = staff_client.get(url)
    assert confirm.status_code == 200 and "4 case(s) with it" in confirm.content.decode()
    assert Suite.objects.filter(pk=suite.pk).exists()
    response = staff_client.post(url)
    assert response.status_code == 302 and response["Location"] == "/admin/evaluations/suite/"
    assert not Suite.objects.exists() and not Case.objects.exists()
    assert audited("evaluation_suite.delete", editor).before["name"] == "VAT regression"


def test_a_suite_with_runs_or_required_is_not_deleted(staff_client, suite, cases, vat_agent):
    url = f"/admin/evaluations/suite/{suite.pk}/delete/"
    requirement = Requirement.objects.create(organization=suite.organization, agent=vat_agent, suite=suite)
    response = staff_client.post(url, follow=True)
    assert response.redirect_chain == [(suite_url(suite), 302)]
    assert "is required before its agent&#x27;s releases go live" in response.content.decode()
    requirement.delete()
    services.run_create(suite=suite, actor=None)
    response = staff_client.post(url, follow=True)
    assert "has runs, the record of what was tested" in response.content.decode()
    assert Suite.objects.filter(pk=suite.pk).exists() and Case.objects.count() == 4
    assert not AuditEvent.objects.filter(action="evaluation_suite.delete").exists()


def test_viewers_may_not_delete_suites(viewer_admin_client, suite):
    url = f"/admin/evaluations/suite/{suite.pk}/delete/"
    assert viewer_admin_client.get(url).status_code == 403
    assert viewer_admin_client.post(url).status_code == 403
    assert Suite.objects.filter(pk=suite.pk).exists()


# --- Cases ---------------------------------------------------------------------------------------------
def test_an_editor_edits_a_case_with_its_checks_as_json(staff_client, editor, suite, cases):
    case = cases[0]
    html = staff_client.get(suite_url(suite)).content.decode()
    assert f'href="{case_url(case)}"' in html and f'href="{case_url(case, "delete/")}"' in html
    page = staff_client.get(case_url(case))
    assert page.status_code == 200
    assert page.context["form"]["checks"].value() == json.dumps(case.checks, indent=2)
    assert page.context["form"]["name"].value() == "Reverse charge"
    bad = staff_client.post(
        case_url(case),
        {"name": "Reverse charge", "input": "Hi?", "checks": '[{"kind": "regex", "pattern": "(a+)+$"}]'},
    )
    assert bad.status_code == 400 and "Check 1 (regex): The pattern takes too long" in bad.content.decode()
    not_json = staff_client.post(case_url(case), {"name": "Reverse charge", "input": "Hi?", "checks": "[{"})
    assert not_json.status_code == 400 and "Not valid JSON" in str(errors(not_json)["checks"])
    empty = staff_client.post(case_url(case), {"name": "", "input": ""})
    assert empty.status_code == 400 and set(errors(empty)) == {"name", "input"}
    taken = staff_client.post(case_url(case), {"name": "Impossible", "input": "Hi?"})
    assert errors(taken)["name"] == ["This suite already has a case with this name."]
    case.refresh_from_db()
    assert case.input == REVERSE_CHARGE_Q and case.must_pass
    response = staff_client.post(
        case_url(case),
        {"name": "Reverse charge", "input": "Hi?", "checks": '[{"kind": "contains", "text": "VAT"}]'},
    )
    assert response.status_code == 302 and response["Location"] == f"{suite_url(suite)}#case-{case.pk}"
    case.refresh_from_db()
    assert case.input == "Hi?" and not case.must_pass
    assert case.checks == [{"kind": "contains", "text": "VAT", "ignore_case": True}]  # normalised
    event = audited("evaluation_case.update", editor)
    assert event.before["input"] == REVERSE_CHARGE_Q and event.after["input"] == "Hi?"


def test_an_editor_deletes_a_case_after_confirming(staff_client, editor, suite, cases):
    case = cases[1]
    confirm = staff_client.get(case_url(case, "delete/"))
    assert confirm.status_code == 200 and "Cites the manual" in confirm.content.decode()
    assert Case.objects.filter(pk=case.pk).exists()
    response = staff_client.post(case_url(case, "delete/"))
    assert response.status_code == 302 and response["Location"].startswith(suite_url(suite))
    assert not Case.objects.filter(pk=case.pk).exists() and Case.objects.count() == 3
    assert audited("evaluation_case.delete", editor).before["name"] == "Cites the manual"


def test_viewers_may_not_edit_or_delete_cases(viewer_admin_client, suite, cases):
    case = cases[0]
    html = viewer_admin_client.get(suite_url(suite)).content.decode()
    assert case_url(case) not in html
    for url in (case_url(case), case_url(case, "delete/")):
        assert viewer_admin_client.get(url).status_code == 403, url
        assert viewer_admin_client.post(url, {"name": "x", "input": "y"}).status_code == 403, url
    assert Case.objects.get(pk=case.pk).name == "Reverse charge"


def test_a_case_is_found_only_under_its_own_suite(staff_client, suite, cases, vat_agent):
    other = services.suite_create(organization=suite.organization, actor=None, agent=vat_agent, name="B")
    wrong = f"/admin/evaluations/suite/{other.pk}/cases/{cases[0].pk}/"
    assert staff_client.get(wrong).status_code == 404
    assert staff_client.post(wrong + "delete/").status_code == 404
    assert Case.objects.count() == 4


def test_the_list_masks_identifiers_and_the_editor_sees_them_in_the_form(staff_client, suite):
    case = add_case(suite, "Refund", f"Refund to {IBAN}?", [{"kind": "contains", "text": IBAN}])
    listing = staff_client.get(suite_url(suite)).content.decode()
    assert IBAN not in listing and IBAN_MASKED in listing
    form = staff_client.get(case_url(case))
    assert form.context["form"]["input"].value() == f"Refund to {IBAN}?"
    assert IBAN in form.context["form"]["checks"].value()


@pytest.mark.parametrize("role", [*Role.values, None])
@pytest.mark.parametrize("is_superuser", [False, True])
def test_whoever_may_change_cases_sees_every_identifier(role, is_superuser):
    """The case editor is prefilled with the case's texts in full and saves what it is sent: were a
    role allowed ``evaluation_case.change`` without seeing every identifier (``agents.privacy``), its
    form would hold masks (``DE89 •••• 3000``) and saving would write them over the real values."""
    access = AdminAccess(organization=None, role=role, is_superuser=is_superuser)
    if policy.allows(access, "evaluation_case.change"):
        assert sees_every_identifier(access), (role, is_superuser)


# --- Requirement ---------------------------------------------------------------------------------------
def test_an_admin_requires_the_suite_changes_the_threshold_and_stops(
    admin_role_client, admin_user, suite, vat_agent
):
    url = f"/admin/evaluations/suite/{suite.pk}/requirement/"
    html = admin_role_client.get(suite_url(suite)).content.decode()
    assert "Require before activation" in html and f'action="{url}"' in html
    assert 'name="threshold" value="90"' in html  # the default, as a percentage
    response = admin_role_client.post(url, {"threshold": "75"})
    assert response.status_code == 302 and response["Location"] == f"{suite_url(suite)}#requirement"
    requirement = Requirement.objects.get()
    assert (requirement.agent, requirement.suite, requirement.threshold) == (
        vat_agent,
        suite,
        Decimal("0.75"),
    )
    assert audited("evaluation_requirement.create", admin_user).after["threshold"] == "0.750"
    html = admin_role_client.get(suite_url(suite)).content.decode()
    assert "75 % of all cases" in html and "Change the threshold" in html and "Stop requiring" in html
    assert 'name="threshold" value="75"' in html
    changed = admin_role_client.post(url, {"threshold": "87.5"})
    assert "passing 87.5 % of its cases" in " ".join(messages_of(changed))
    requirement.refresh_from_db()
    assert requirement.threshold == Decimal("0.875")
    assert audited("evaluation_requirement.update", admin_user).after["threshold"] == "0.875"
    response = admin_role_client.post(f"{url}delete/")
    assert response.status_code == 302 and not Requirement.objects.exists()
    assert audited("evaluation_requirement.delete", admin_user).before["suite_id"] == suite.pk


def test_a_threshold_outside_0_to_100_is_a_field_error(owner_client, suite):
    url = f"/admin/evaluations/suite/{suite.pk}/requirement/"
    for value, message in (
        ("150", "Ensure this value is less than or equal to 100."),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("most", "Enter a number."),
        ("", "This field is required."),
    ):
        response = owner_client.post(url, {"threshold": value})
        assert response.status_code == 400, value
        assert errors(response, "threshold_form")["threshold"] == [message], value
    assert not Requirement.objects.exists()


def test_requiring_another_suite_of_the_agent_replaces_the_requirement(owner_client, owner, suite, vat_agent):
    first = services.suite_create(organization=suite.organization, actor=None, agent=vat_agent, name="First")
    Requirement.objects.create(
        organization=suite.organization, agent=vat_agent, suite=first, threshold=Decimal("0.755")
    )
    html = owner_client.get(suite_url(suite)).content.decode()
    assert "Require this suite instead" in html and "Stop requiring" not in html
    # The form offers the agent's threshold, not the default: replacing the suite keeps it.
    assert 'name="threshold" value="75.5"' in html
    owner_client.post(f"/admin/evaluations/suite/{suite.pk}/requirement/", {"threshold": "75.5"})
    requirement = Requirement.objects.get()
    assert requirement.suite == suite and requirement.threshold == Decimal("0.755")
    # Stopping from a suite that is not the required one removes nothing.
    response = owner_client.post(f"/admin/evaluations/suite/{first.pk}/requirement/delete/")
    assert "there is nothing to stop" in " ".join(messages_of(response))
    assert Requirement.objects.filter(suite=suite).exists()


def test_editors_and_viewers_do_not_touch_requirements(staff_client, viewer_admin_client, suite, vat_agent):
    assert "Require before activation" not in staff_client.get(suite_url(suite)).content.decode()
    url = f"/admin/evaluations/suite/{suite.pk}/requirement/"
    for client in (staff_client, viewer_admin_client):
        assert client.post(url, {"threshold": "50"}).status_code == 403
    assert not Requirement.objects.exists()
    Requirement.objects.create(organization=suite.organization, agent=vat_agent, suite=suite)
    for client in (staff_client, viewer_admin_client):
        assert client.post(f"{url}delete/").status_code == 403
        assert client.post(url, {"threshold": "50"}).status_code == 403
    assert Requirement.objects.get().threshold == Decimal("0.9")


# --- Another organisation ------------------------------------------------------------------------------
def test_another_organisation_gets_404_and_writes_nothing(stranger_client, suite, cases, vat_agent):
    case = cases[0]
    for url, data in (
        (f"/admin/evaluations/suite/{suite.pk}/settings/", {"name": "Mine"}),
        (f"/admin/evaluations/suite/{suite.pk}/delete/", {}),
        (f"/admin/evaluations/suite/{suite.pk}/requirement/", {"threshold": "10"}),
        (f"/admin/evaluations/suite/{suite.pk}/requirement/delete/", {}),
        (case_url(case), {"name": "Mine", "input": "x"}),
        (case_url(case, "delete/"), {}),
    ):
        assert stranger_client.post(url, data).status_code == 404, url
    for url in (f"/admin/evaluations/suite/{suite.pk}/delete/", case_url(case), case_url(case, "delete/")):
        assert stranger_client.get(url).status_code == 404, url
    # Our agent is not among their choices: a form error, no suite for it.
    response = stranger_client.post(ADD_URL, {"agent": vat_agent.pk, "name": "Theirs"})
    assert response.status_code == 400 and "agent" in errors(response)
    assert list(Suite.objects.values_list("name", flat=True)) == ["VAT regression"]
    assert Case.objects.count() == 4 and not Requirement.objects.exists()


# --- Query counts --------------------------------------------------------------------------------------
def test_the_suite_page_with_every_form_costs_the_same_queries_with_more_cases(
    owner_client, suite, cases, vat_agent, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Requirement.objects.create(organization=suite.organization, agent=vat_agent, suite=suite)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(suite_url(suite))
    for i in range(10):
        add_case(suite, f"More {i}", "What must every invoice show?", [{"kind": "not_blocked"}])
    services.run_create(suite=suite, actor=None)
    with django_assert_max_num_queries(len(few)):
        html = owner_client.get(suite_url(suite)).content.decode()
    assert html.count('/delete/">Delete</a>') == 14 and "Stop requiring" in html


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_checks_are_a_field_error_on_the_add_and_edit_pages(staff_client, suite, cases, depth):
    """Nested past what ``json.loads`` reads (a RecursionError) or past what a JSON column stores, the
    checks are a 400 with a message beside the field, never a 500; nothing is written."""
    nested = "[" * depth + "]" * depth
    for url in (f"/admin/evaluations/suite/{suite.pk}/cases/add/", case_url(cases[0])):
        form = "case_form" if url.endswith("add/") else "form"
        for checks in (nested, f'[{{"kind": "json_schema", "schema": {{"x": {nested}}}}}]'):
            response = staff_client.post(url, {"name": "Deep", "input": "Hi?", "checks": checks})
            assert response.status_code == 400, (url, checks[:20])
            assert "100 levels of nesting" in errors(response, form)["checks"][0] or (
                depth < 1000 and checks == nested  # read, then refused as no check at all
            )
            if depth == 5000:
                assert errors(response, form)["checks"] == [
                    "Not valid JSON: nested too deeply (JSON is limited to 100 levels of nesting)."
                ]
    assert Case.objects.count() == 4 and not Case.objects.filter(name="Deep").exists()
