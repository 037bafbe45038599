"""The agent's own pages: creation wizard, detail, persona versions and editor, assignments.

Routed by ``agents.admin.AgentAdmin.get_urls``; rendered inside the admin chrome. Writes go through
``agents.services`` and ``personas.services`` only.
"""

from __future__ import annotations

import difflib
import re
from types import SimpleNamespace

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, Count, Q, Sum
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from agents import selectors
from agents import services as agent_services
from agents.admin import activation_pages as admin_activation
from agents.admin.assignments import ASSIGNMENT_PAGES
from agents.admin.forms import (
    AssignmentAddForm,
    AssignmentSettingsForm,
    BasicsForm,
    CloneForm,
    PersonaDiffForm,
    PersonaEditorForm,
    PersonaStepForm,
    assignment_step_form,
    target_queryset,
)
from agents.admin.releases import release_panel
from agents.models import Agent, AgentStatus, Execution, ExecutionStatus, Feedback
from agents.privacy import shown_text
from agents.runtime import pipeline
from personas import selectors as persona_selectors
from personas import services as persona_services
from personas.models import Persona
from prisma_glow.admin.base import (
    add_errors_to_form,
    render_admin_page,
    run_service,
    validation_messages,
)
from prisma_glow.admin.htmx import htmx_partial
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.admin.stepup import requires_step_up
from prisma_glow.aggregates import Percentile
from prisma_glow.ids import parse_id

WIZARD_SESSION_KEY = "agent_wizard"
WIZARD_STEPS = [
    ("basics", "Basics", BasicsForm),
    ("persona", "Persona", PersonaStepForm),
    *((kind.key, kind.label, assignment_step_form(kind)) for kind in ASSIGNMENT_PAGES.values()),
    ("review", "Review", None),
]
STEP_NAMES = [name for name, _, _ in WIZARD_STEPS]
STEP_LABELS = {name: label for name, label, _ in WIZARD_STEPS}
# A step's state as the step list says it (in words, not by colour alone).
WIZARD_STEP_STATES = {"todo": "not started", "done": "done", "attention": "needs attention"}
# The lifecycle page's transitions and what each performs (activating is requesting: four eyes).
LIFECYCLE_OPERATIONS = {"activate": "release.request", "deprecate": "agent.deprecate"}


class _PreviewPassage:
    """Stands for the passages retrieved at each run, so the preview shows where they go."""

    text = "(the passages retrieved for the question appear here at each run)"

    def citation_label(self) -> str:
        return "document, page, section"


def assemble_messages(agent: Agent, values: dict) -> list[dict]:
    """The messages the model would receive with the persona being edited, for the editor's preview.

    The run's own configuration (``agents.selectors``) with the edited persona in place of the agent's,
    put together by the runtime's own message assembly, so the preview is what a run sends.
    """
    persona = SimpleNamespace(
        system_prompt=values.get("system_prompt") or "",
        tone=values.get("tone") or "",
        audience=values.get("audience") or "",
        language=values.get("language") or "",
    )
    configuration = selectors.agent_run_configuration_with_persona(agent=agent, persona=persona)
    passages = [_PreviewPassage()] if configuration.knowledge else []
    return pipeline.build_messages(
        configuration, "(the user's question)", passages, bool(configuration.tools)
    )


class AgentPages:
    """Views bound to the AgentAdmin (for its options, rights and site)."""

    def __init__(self, model_admin):
        self.admin = model_admin

    # --- helpers -------------------------------------------------------------------------------
    def _agent(self, request, agent_id) -> Agent:
        return scoped_get(
            Agent.objects.select_related("owner", "provider", "organization", "active_release"),
            request,
            pk=agent_id,
        )

    def _page(self, request, template, context, *, title):
        return render_admin_page(request, template, context, title=title, model_admin=self.admin)

    def _require(self, request, operation: str, obj=None) -> None:
        self.admin.require(request, operation, obj)

    def _allows(self, request, operation: str, obj=None) -> bool:
        return self.admin.allows(request, operation, obj)

    # --- wizard --------------------------------------------------------------------------------
    # The session keeps what was typed at each step, valid or not, so that back and forward lose
    # nothing; whether a step is done is judged again at every page from that data (a name another
    # agent took meanwhile makes Basics need attention again). "New agent" (/wizard/) starts clean.
    def _wizard_data(self, request) -> dict:
        return request.session.get(WIZARD_SESSION_KEY, {})

    def _wizard_forms(self, request, data: dict, *, posted=None) -> dict:
        """Each step's form bound to its stored data, or None for a step never saved; ``posted``
        (a step's name and the form just posted) takes that step's place."""
        forms = {}
        for name, _, form_class in WIZARD_STEPS[:-1]:
            if posted is not None and posted[0] == name:
                forms[name] = posted[1]
            elif name in data:
                forms[name] = form_class(data=MultiValueDict(data[name]), request=request)
            else:
                forms[name] = None
        return forms

    @staticmethod
    def _statuses(forms: dict) -> dict[str, str]:
        """Each step's state: ``todo`` (never saved), ``done`` (its data is valid now), ``attention``."""
        return {
            name: "todo" if form is None else ("done" if form.is_valid() else "attention")
            for name, form in forms.items()
        }

    @staticmethod
    def _first_unfinished(statuses: dict[str, str], before: str) -> str | None:
        """The first step before ``before`` that is not done, if any."""
        for name in STEP_NAMES[: STEP_NAMES.index(before)]:
            if statuses[name] != "done":
                return name
        return None

    def _steps_context(self, statuses: dict[str, str], current: str) -> list[dict]:
        """The step list: each step's state, and a link where it may be opened (a step saved before,
        or one whose earlier steps are all done)."""
        steps = []
        reachable = True
        for index, (name, label, _) in enumerate(WIZARD_STEPS):
            status = statuses.get(name, "todo")
            steps.append(
                {
                    "name": name,
                    "label": label,
                    "number": index + 1,
                    "status": status,
                    "status_label": WIZARD_STEP_STATES[status],
                    "current": name == current,
                    "url": reverse("admin:agents_agent_wizard_step", args=[name])
                    if reachable or status != "todo"
                    else None,
                }
            )
            reachable = reachable and status == "done"
        return steps

    def _wizard_page(self, request, *, step, form, statuses, status=200, **extra):
        index = STEP_NAMES.index(step)
        context = {
            "form": form,
            "step": step,
            "step_label": WIZARD_STEPS[index][1],
            "steps": self._steps_context(statuses, step),
            "previous_step": STEP_NAMES[index - 1] if index else None,
            **extra,
        }
        response = self._page(request, "admin/agents/agent/wizard.html", context, title="New agent")
        response.status_code = status
        return response

    def wizard_start(self, request):
        """Opening "New agent": Basics, empty, whatever an earlier wizard left in the session. Saving
        it starts a new wizard (the earlier one's data is dropped then, by a POST, not by opening the
        page); until then the earlier one may be continued."""
        self._require(request, "agent.add")
        if request.method == "POST":
            form = BasicsForm(data=request.POST, request=request)
            request.session[WIZARD_SESSION_KEY] = {
                "basics": {name: request.POST.getlist(name) for name in form.fields}
            }
            if form.is_valid():
                return redirect("admin:agents_agent_wizard_step", step=STEP_NAMES[1])
            return self._wizard_page(
                request, step="basics", form=form, statuses={"basics": "attention"}, status=400, fresh=True
            )
        data = self._wizard_data(request)
        started = None
        if data:
            statuses = self._statuses(self._wizard_forms(request, data))
            resume = next((name for name in STEP_NAMES[:-1] if statuses[name] != "done"), "review")
            name = (data.get("basics", {}).get("name") or [""])[0].strip()
            started = {"name": name, "url": reverse("admin:agents_agent_wizard_step", args=[resume])}
        return self._wizard_page(
            request, step="basics", form=BasicsForm(request=request), statuses={}, fresh=True, started=started
        )

    def wizard_reset(self, request):
        self._require(request, "agent.add")
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        request.session.pop(WIZARD_SESSION_KEY, None)
        messages.info(request, "The wizard was cleared.")
        return redirect("admin:agents_agent_wizard_step", step="basics")

    def wizard_step(self, request, step):
        self._require(request, "agent.add")
        if step not in STEP_NAMES:
            raise Http404("No such step.")
        if step == "review":
            return self._wizard_review(request)
        index = STEP_NAMES.index(step)
        label = WIZARD_STEPS[index][1]
        data = self._wizard_data(request)
        if request.method == "POST":
            form = WIZARD_STEPS[index][2](data=request.POST, request=request)
            # Keep what was typed, valid or not, so back and forward lose nothing.
            data[step] = {name: request.POST.getlist(name) for name in form.fields}
            request.session[WIZARD_SESSION_KEY] = data
            if "_back" in request.POST and index > 0:
                return redirect("admin:agents_agent_wizard_step", step=STEP_NAMES[index - 1])
            statuses = self._statuses(self._wizard_forms(request, data, posted=(step, form)))
            earlier = self._first_unfinished(statuses, step)
            if statuses[step] == "done":
                if earlier is None:
                    return redirect("admin:agents_agent_wizard_step", step=STEP_NAMES[index + 1])
                # Steps go in order: the earlier step that is not done comes first, and says why.
                messages.warning(
                    request,
                    f"Your choices on “{label}” are kept. {_blocked(earlier, statuses[earlier], label)}",
                )
                return redirect("admin:agents_agent_wizard_step", step=earlier)
            response_status = 400
        else:
            forms = self._wizard_forms(request, data)
            statuses = self._statuses(forms)
            earlier = self._first_unfinished(statuses, step)
            form = forms[step] or WIZARD_STEPS[index][2](request=request)
            response_status = 200
        if earlier is not None:
            messages.warning(
                request, f"{_blocked(earlier, statuses[earlier], label)} What you choose here is kept."
            )
        return self._wizard_page(request, step=step, form=form, statuses=statuses, status=response_status)

    def _wizard_review(self, request):
        forms_by_step = self._wizard_forms(request, self._wizard_data(request))
        statuses = self._statuses(forms_by_step)
        first_unfinished = self._first_unfinished(statuses, "review")
        if first_unfinished is not None:
            messages.error(
                request,
                _blocked(
                    first_unfinished,
                    statuses[first_unfinished],
                    "creating the agent" if request.method == "POST" else "the review",
                    quote=False,
                ),
            )
            return redirect("admin:agents_agent_wizard_step", step=first_unfinished)
        if request.method == "POST" and "_back" in request.POST:
            return redirect("admin:agents_agent_wizard_step", step="guardrails")
        errors: list[str] = []
        if request.method == "POST":
            agent, error = run_service(self._create_agent, request=request, forms_by_step=forms_by_step)
            if error is None:
                request.session.pop(WIZARD_SESSION_KEY, None)
                messages.success(
                    request, f"The agent “{agent.name}” was created as a draft. Test it, then activate it."
                )
                return redirect("admin:agents_agent_detail", agent_id=agent.pk)
            errors = validation_messages(error)
        context = {
            "step": "review",
            "steps": self._steps_context(statuses, "review"),
            "basics": forms_by_step["basics"].cleaned_data,
            "persona": forms_by_step["persona"].cleaned_data,
            "tools": forms_by_step["tools"].cleaned_data["tools"],
            "knowledge_bases": forms_by_step["knowledge"].cleaned_data["knowledge_bases"],
            "guardrails": forms_by_step["guardrails"].cleaned_data["guardrails"],
            "errors": errors,
            "previous_step": "guardrails",
        }
        response = self._page(request, "admin/agents/agent/wizard_review.html", context, title="New agent")
        if errors:
            response.status_code = 400
        return response

    @staticmethod
    @transaction.atomic
    def _create_agent(*, request, forms_by_step) -> Agent:
        """Create the draft agent, its first persona (active) and its assignments, all or nothing."""
        actor = request.user
        basics = forms_by_step["basics"].cleaned_data
        fields = {
            k: basics[k] for k in ("type", "description", "provider", "model") if basics.get(k) not in (None,)
        }
        if basics.get("owner") is not None:
            fields["owner"] = basics["owner"]
        agent = agent_services.agent_create(
            organization=get_admin_access(request).organization, actor=actor, name=basics["name"], **fields
        )
        persona_values = forms_by_step["persona"].persona_values()
        persona_services.persona_create(
            agent=agent,
            actor=actor,
            name=persona_values.pop("name"),
            system_prompt=persona_values.pop("system_prompt"),
            activate=True,
            **persona_values,
        )
        for kind in ASSIGNMENT_PAGES.values():
            for target in forms_by_step[kind.key].cleaned_data[kind.choices_field]:
                agent_services.assignment_create(
                    kind=kind.kind, agent=agent, actor=actor, **{kind.target: target}
                )
        return agent

    # --- detail --------------------------------------------------------------------------------
    def detail(self, request, agent_id):
        agent = self._agent(request, agent_id)
        executions = Execution.objects.filter(agent=agent)
        since = timezone.now() - timezone.timedelta(days=30)
        metrics = executions.aggregate(
            runs=Count("id"),
            recent=Count("id", filter=Q(created_at__gte=since)),
            completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
            blocked=Count("id", filter=Q(status=ExecutionStatus.BLOCKED)),
            avg_latency=Avg("latency_ms"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
            # The dashboard's p95 (percentile_cont), in the same query.
            p95_latency=Percentile("latency_ms", 0.95),
        )
        metrics["success_rate"] = (
            round(100 * metrics["completed"] / metrics["runs"]) if metrics["runs"] else None
        )
        metrics.update(
            Feedback.objects.filter(execution__agent=agent).aggregate(
                up=Count("id", filter=Q(rating=1)), down=Count("id", filter=Q(rating=-1))
            )
        )
        context = {
            "agent": agent,
            "active_persona": agent.personas.filter(is_active=True).first(),
            "persona_count": agent.personas.count(),
            "tool_assignments": list(agent.tool_assignments.select_related("tool")),
            "knowledge_assignments": list(agent.knowledge_assignments.select_related("knowledge_base")),
            "guardrail_assignments": list(agent.guardrail_assignments.select_related("guardrail")),
            "recent_executions": _masked_inputs(
                executions.select_related("persona").order_by("-created_at", "-id")[:10]
            ),
            "metrics": metrics,
            "clone_form": CloneForm(initial={"name": f"{agent.name} (copy)"}),
            "can_write": self._allows(request, "agent.change", agent),
            **release_panel(request, agent, self.admin),
            "console_url": reverse("admin:index") + f"console/?agent={agent.pk}",
            **admin_activation.agent_activation_context(request, agent),
            "identifiers_notice": ""
            if selectors.agent_screens_identifiers(agent=agent)
            else selectors.IDENTIFIERS_SENT_NOTICE,
        }
        return self._page(request, "admin/agents/agent/detail.html", context, title=agent.name)

    @requires_step_up(lambda transition, **_: LIFECYCLE_OPERATIONS.get(transition, ""))
    def lifecycle(self, request, agent_id, transition):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if transition not in LIFECYCLE_OPERATIONS:
            raise Http404("Unknown transition.")
        self._require(request, LIFECYCLE_OPERATIONS[transition])
        agent = self._agent(request, agent_id)
        if transition == "activate":
            # Activation is a request another admin or owner approves (agents.activation).
            number = request.POST.get("release", "")
            return admin_activation.request_activation(
                self.admin,
                request,
                agent,
                release_number=parse_id(number),
                notes=request.POST.get("notes", ""),
            )
        service = agent_services.agent_deprecate
        result, error = run_service(service, agent=agent, actor=request.user)
        if error is None:
            label = dict(AgentStatus.choices)[result.status].lower()
            messages.success(request, f"The agent “{agent.name}” is now {label}.")
        else:
            for line in validation_messages(error):
                messages.error(request, line)
        return redirect("admin:agents_agent_detail", agent_id=agent.pk)

    def clone(self, request, agent_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "agent.add")
        agent = self._agent(request, agent_id)
        form = CloneForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give the copy a name.")
            return redirect("admin:agents_agent_detail", agent_id=agent.pk)
        clone, error = run_service(
            agent_services.agent_clone, agent=agent, actor=request.user, name=form.cleaned_data["name"]
        )
        if error is not None:
            for line in validation_messages(error):
                messages.error(request, line)
            return redirect("admin:agents_agent_detail", agent_id=agent.pk)
        messages.success(request, f"“{agent.name}” was copied as the draft “{clone.name}”.")
        return redirect("admin:agents_agent_detail", agent_id=clone.pk)

    # --- personas ------------------------------------------------------------------------------
    def personas(self, request, agent_id):
        agent = self._agent(request, agent_id)
        # Each version's state (draft / used, live, current, last edit) by the personas' selector.
        versions = persona_selectors.persona_versions(agent=agent)
        numbers = [p.version for p in versions]
        diff = None
        diff_form = PersonaDiffForm(
            request.GET if "a" in request.GET else None,
            versions=numbers,
            initial={"a": numbers[1] if len(numbers) > 1 else None, "b": numbers[0] if numbers else None},
        )
        if diff_form.is_bound and diff_form.is_valid():
            by_number = {p.version: p for p in versions}
            diff = persona_services.persona_diff(
                persona=by_number[diff_form.cleaned_data["b"]], other=by_number[diff_form.cleaned_data["a"]]
            )
            for change in diff["changes"]:
                change["label"] = change["field"].replace("_", " ").capitalize()
                change["rows"] = side_by_side(change["before"], change["after"])
        context = {
            "agent": agent,
            "versions": versions,
            "diff_form": diff_form,
            "diff": diff,
            "can_write": self._allows(request, "persona.add"),
            "can_activate": self._allows(request, "persona.change"),
            "can_read_audit": self._allows(request, "audit.view"),
        }
        status = 400 if diff_form.is_bound and diff_form.errors else 200
        response = htmx_partial(
            request,
            "admin/agents/agent/personas.html",
            {
                **self.admin.admin_site.each_context(request),
                "title": f"{agent.name}: persona versions",
                "opts": self.admin.opts,
                **context,
            },
            partial="diff",
            status=status,
        )
        return response

    def persona_activate(self, request, agent_id, persona_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "persona.change")
        agent = self._agent(request, agent_id)
        persona = scoped_get(Persona.objects.filter(agent=agent), request, pk=persona_id)
        _, error = run_service(persona_services.persona_activate, persona=persona, actor=request.user)
        if error is None:
            messages.success(
                request,
                f"Version {persona.version} is now current: the console runs it and the next release takes it.",
            )
        else:
            for line in validation_messages(error):
                messages.error(request, line)
        return redirect("admin:agents_agent_personas", agent_id=agent.pk)

    def persona_edit(self, request, agent_id, persona_id=None):
        """The persona editor: a new version, an in-place edit of an unused version, or a new version
        from a locked one. The page says which before saving (``persona_selectors.persona_save_outcome``,
        the services' own rule) and after, what the service did."""
        self._require(request, "persona.add")
        agent = self._agent(request, agent_id)
        persona = None
        if persona_id is not None:
            persona = scoped_get(Persona.objects.filter(agent=agent), request, pk=persona_id)
        if request.method == "POST":
            form = PersonaEditorForm(request.POST)
            if form.is_valid():
                values = form.persona_values()
                if persona is None:
                    result, error = run_service(
                        persona_services.persona_create,
                        agent=agent,
                        actor=request.user,
                        name=values.pop("name"),
                        system_prompt=values.pop("system_prompt"),
                        activate=True if form.cleaned_data["activate"] else None,
                        **values,
                    )
                else:
                    result, error = run_service(
                        persona_services.persona_update, persona=persona, actor=request.user, **values
                    )
                    if error is None and form.cleaned_data["activate"]:
                        result, error = run_service(
                            persona_services.persona_activate, persona=result, actor=request.user
                        )
                if error is None:
                    messages.success(
                        request,
                        _persona_saved_message(persona, result, made_current=form.cleaned_data["activate"]),
                    )
                    return redirect("admin:agents_agent_personas", agent_id=agent.pk)
                add_errors_to_form(form, _persona_error(error))
        else:
            source = persona or agent.personas.filter(is_active=True).first()
            initial = PersonaEditorForm.from_persona(source) if source else {}
            form = PersonaEditorForm(initial=initial)
        outcome = persona_selectors.persona_save_outcome(agent=agent, persona=persona)
        preview_values = {
            "system_prompt": (form["system_prompt"].value() or ""),
            "tone": form["tone"].value() or "",
            "audience": form["audience"].value() or "",
            "language": form["language"].value() or "",
        }
        context = {
            "agent": agent,
            "persona": persona,
            "form": form,
            "outcome": outcome,
            "prompt_messages": assemble_messages(agent, preview_values),
            "preview_url": reverse("admin:agents_agent_persona_preview", args=[agent.pk]),
        }
        if persona is None:
            title = f"{agent.name}: new persona version"
        elif outcome.in_place:
            title = f"{agent.name}: edit persona v{persona.version}"
        else:
            title = f"{agent.name}: new persona version from v{persona.version}"
        response = self._page(request, "admin/agents/agent/persona_edit.html", context, title=title)
        if request.method == "POST":
            response.status_code = 400
        return response

    def persona_preview(self, request, agent_id):
        """The assembled system message for what is typed in the editor (HTMX, on input)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "persona.add")
        agent = self._agent(request, agent_id)
        values = {k: request.POST.get(k, "") for k in ("system_prompt", "tone", "audience", "language")}
        context = {"prompt_messages": assemble_messages(agent, values), "agent": agent}
        return htmx_partial(
            request,
            "admin/agents/agent/persona_edit.html",
            {**self.admin.admin_site.each_context(request), **context},
            partial="preview",
        )

    # --- assignments ---------------------------------------------------------------------------
    def assignments(self, request, agent_id, kind):
        if kind not in ASSIGNMENT_PAGES:
            raise Http404("Unknown kind of assignment.")
        spec = ASSIGNMENT_PAGES[kind]
        agent = self._agent(request, agent_id)
        can_write = self._allows(request, "assignment.change")
        add_form = None
        row_errors: dict[int, list[str]] = {}
        status = 200
        if request.method == "POST":
            action = request.POST.get("action")
            operation = {"add": "assignment.add", "remove": "assignment.delete"}.get(
                action, "assignment.change"
            )
            self._require(request, operation)
            rows = {a.pk: a for a in getattr(agent, spec.related).all()}
            error = None
            if action == "add":
                add_form = AssignmentAddForm(
                    request.POST, kind=kind, targets=target_queryset(kind, request, agent)
                )
                if add_form.is_valid():
                    data = dict(add_form.cleaned_data)
                    target = data.pop("target")
                    _, error = run_service(
                        agent_services.assignment_create,
                        kind=spec.kind,
                        agent=agent,
                        actor=request.user,
                        **{spec.target: target},
                        **data,
                    )
                    if error is None:
                        messages.success(request, f"“{target}” was assigned.")
                        add_form = None
                    else:
                        add_errors_to_form(add_form, error)
                        status = 400
                else:
                    status = 400
            else:
                assignment = rows.get(_int(request.POST.get("assignment")))
                if assignment is None:
                    raise Http404("No such assignment.")
                if action == "update":
                    form = AssignmentSettingsForm(request.POST, kind=kind)
                    if form.is_valid():
                        _, error = run_service(
                            agent_services.assignment_update,
                            assignment=assignment,
                            actor=request.user,
                            **form.cleaned_data,
                        )
                        if error is None:
                            messages.success(request, f"Settings of “{_target(assignment, spec)}” saved.")
                    else:
                        error_lines = [f"{k}: {' '.join(v)}" for k, v in form.errors.items()]
                        row_errors[assignment.pk] = error_lines
                        status = 400
                elif action == "remove":
                    _, error = run_service(
                        agent_services.assignment_delete, assignment=assignment, actor=request.user
                    )
                    if error is None:
                        messages.success(request, f"“{_target(assignment, spec)}” was removed.")
                elif action in ("up", "down"):
                    ordered = sorted(rows.values(), key=lambda a: (a.order, a.pk))
                    ids = [a.pk for a in ordered]
                    i = ids.index(assignment.pk)
                    j = i - 1 if action == "up" else i + 1
                    if 0 <= j < len(ids):
                        ids[i], ids[j] = ids[j], ids[i]
                        _, error = run_service(
                            agent_services.assignment_reorder,
                            kind=spec.kind,
                            agent=agent,
                            actor=request.user,
                            assignment_ids=ids,
                        )
                else:
                    raise Http404("Unknown action.")
                if error is not None:
                    row_errors[assignment.pk] = validation_messages(error)
                    status = 400
            if status == 200 and not getattr(request, "htmx", False):
                return HttpResponseRedirect(request.path)
        assignments = list(getattr(agent, spec.related).select_related(spec.target).order_by("order", "id"))
        rows = [
            {
                "assignment": a,
                "target": _target(a, spec),
                "form": AssignmentSettingsForm(
                    kind=kind,
                    initial={
                        "enabled": a.enabled,
                        "settings": getattr(a, "settings", {}),
                        "top_k": getattr(a, "top_k", 5),
                        "min_score": getattr(a, "min_score", 0.0),
                        "requires_approval": getattr(a, "requires_approval", None),
                    },
                    auto_id=f"id_{a.pk}_%s",
                ),
                "errors": row_errors.get(a.pk, []),
                "first": index == 0,
                "last": index == len(assignments) - 1,
            }
            for index, a in enumerate(assignments)
        ]
        if add_form is None:
            add_form = AssignmentAddForm(kind=kind, targets=target_queryset(kind, request, agent))
        context = {
            **self.admin.admin_site.each_context(request),
            "opts": self.admin.opts,
            "title": f"{agent.name}: {spec.label.lower()}",
            "agent": agent,
            "kind": kind,
            "kinds": [(k, v.label) for k, v in ASSIGNMENT_PAGES.items()],
            "label": spec.label,
            "rows": rows,
            "add_form": add_form,
            "can_write": can_write,
        }
        return htmx_partial(
            request, "admin/agents/agent/assignments.html", context, partial="assignments", status=status
        )


#: Unchanged lines shown around a change in the side-by-side diff; longer unchanged runs are folded.
DIFF_CONTEXT = 2


def side_by_side(before: str, after: str, *, context: int = DIFF_CONTEXT) -> list[dict]:
    """The two versions of a text as rows of a side-by-side diff: ``{"kind", "old_no", "old",
    "new_no", "new"}`` with kind ``same``, ``change`` (a line replaced), ``del`` (only on the left),
    ``add`` (only on the right) or ``fold`` (``count`` unchanged lines not shown); a ``change`` row
    also has ``old_parts`` and ``new_parts``, its lines as ``(text, changed)`` word runs. Line numbers
    count from 1; an empty text has no lines."""
    old, new = before.splitlines(), after.splitlines()
    rows: list[dict] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            same = [
                {"kind": "same", "old_no": i + 1, "old": old[i], "new_no": j + 1, "new": new[j]}
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            ]
            first, last = i1 == 0, i2 == len(old)
            keep_start = 0 if first else context
            keep_end = 0 if last else context
            if len(same) > keep_start + keep_end + 1:
                folded = len(same) - keep_start - keep_end
                same = [*same[:keep_start], {"kind": "fold", "count": folded}, *same[len(same) - keep_end :]]
            rows += same
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            row = {"kind": "change", "old_no": None, "old": "", "new_no": None, "new": ""}
            if i < i2:
                row.update(old_no=i + 1, old=old[i])
            if j < j2:
                row.update(new_no=j + 1, new=new[j])
            if i >= i2:
                row["kind"] = "add"
            elif j >= j2:
                row["kind"] = "del"
            else:
                row["old_parts"], row["new_parts"] = _changed_words(row["old"], row["new"])
            rows.append(row)
    return rows


_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


def _changed_words(old: str, new: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both lines of a changed row as ``(text, changed)`` parts, word by word, to mark what changed."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    old_parts: list[tuple[str, bool]] = []
    new_parts: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i2 > i1:
            old_parts.append(("".join(a[i1:i2]), tag != "equal"))
        if j2 > j1:
            new_parts.append(("".join(b[j1:j2]), tag != "equal"))
    return _merge_parts(old_parts), _merge_parts(new_parts)


def _merge_parts(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Adjacent parts of the same kind joined; a space between two changed parts counts as changed,
    so that "senior VAT" is marked as one run rather than word by word."""
    flags = [changed for _, changed in parts]
    for k in range(1, len(parts) - 1):
        if not flags[k] and parts[k][0].isspace() and flags[k - 1] and flags[k + 1]:
            flags[k] = True
    merged: list[tuple[str, bool]] = []
    for (text, _), changed in zip(parts, flags, strict=True):
        if merged and merged[-1][1] == changed:
            merged[-1] = (merged[-1][0] + text, changed)
        else:
            merged.append((text, changed))
    return merged


def _blocked(step: str, status: str, before: str, *, quote: bool = True) -> str:
    """Why the wizard cannot go on yet: the earlier ``step`` (its ``status``) comes before ``before``."""
    state = "needs attention" if status == "attention" else "is not done yet"
    target = f"“{before}”" if quote else before
    return f"Step “{STEP_LABELS[step]}” {state}: complete it before {target}."


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _target(assignment, spec):
    return getattr(assignment, spec.target)


def _persona_saved_message(edited, result, *, made_current: bool = False) -> str:
    """What the editor's save did: a new version, the edited version changed in place, or, the edited
    version being locked (or used by a run since the page was opened), the next version."""
    if edited is None:
        return f"Persona version {result.version} was saved."
    if result.pk == edited.pk:
        if all(getattr(result, f) == getattr(edited, f) for f in persona_services.EDITABLE_FIELDS):
            if made_current:
                return f"Version {result.version} is now current; its contents did not change."
            return f"Nothing changed: version {result.version} is as it was."
        return f"Version {result.version} was changed in place; the versions list shows the edit."
    return (
        f"Version {edited.version} is locked (used by runs or in a release) and stays as it was: "
        f"your edit was saved as version {result.version}."
    )


def _persona_error(error):
    """Map persona model field names onto the editor's field names."""
    if hasattr(error, "error_dict") and "name" in error.error_dict:
        mapped = dict(error.error_dict)
        mapped["persona_name"] = mapped.pop("name")
        return ValidationError(mapped)
    return error


def _masked_inputs(executions) -> list:
    """``executions`` as a list shows them: each input with its client identifiers masked
    (``agents.privacy``), in memory."""
    rows = list(executions)
    for execution in rows:
        execution.input = shown_text(execution, execution.input, visible=False)
    return rows
