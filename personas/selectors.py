"""Persona reads shared by the services, the staff pages and the API.

One rule decides whether a version may change in place (``used_condition``): no execution ran with it
and no release holds it. A used version is locked: an edit becomes the agent's next version
(``personas.services.persona_update``), and it cannot be deleted. The services, the versions page, the
editor and the API all read that rule from here (annotated in the query that reads the versions, or
asked for one version by ``persona_is_used``); none re-derives it.

The versions page shows each version's state (``persona_versions``):

* **Draft — editable**: never used; saving an edit changes it in place (and the list then says who
  edited it and when, from the audit log's last ``persona.update`` of the version);
* **Used — locked**: runs used it or a release holds it; an edit creates the next version;

and, beside that, which version the agent runs where:

* **Live — in release N**: the version the agent's active release holds (what API clients get while the
  agent is active);
* **Current**: the agent's active persona version (``Persona.is_active``): what the console's test runs
  use and what the next release will freeze.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Cast, Coalesce

from personas.models import Persona
from prisma_glow.audit.models import AuditEvent

#: The audit action of an in-place edit (``persona_update`` on an unused version).
EDIT_ACTION = "persona.update"


class PersonaState(models.TextChoices):
    """Whether a version can still change (the one rule: ``used_condition``)."""

    DRAFT = "draft", "Draft — editable"
    USED = "used", "Used — locked"


def _related_model(name: str):
    # agents.Execution and agents.Release, reached through the reverse relations: personas imports no agents.
    return Persona._meta.get_field(name).related_model


def used_condition() -> Q:
    """The rule, as SQL on persona rows: an execution ran with the version, or a release holds it."""
    runs = _related_model("executions").objects.filter(persona=OuterRef("pk"))
    releases = _related_model("releases").objects.filter(persona=OuterRef("pk"))
    return Q(Exists(runs)) | Q(Exists(releases))


def with_usage(queryset: models.QuerySet) -> models.QuerySet:
    """``queryset`` of personas with ``is_used`` (the rule) annotated, in the same query."""
    return queryset.annotate(
        is_used=models.ExpressionWrapper(used_condition(), output_field=models.BooleanField())
    )


def persona_is_used(*, persona: Persona) -> bool:
    """True when ``persona`` is locked: an execution has run with it or a release holds it (one query)."""
    if persona.pk is None:
        return False
    return Persona.objects.filter(pk=persona.pk).filter(used_condition()).exists()


def persona_next_version(*, agent) -> int:
    """The number the agent's next persona version gets (one more than the highest, from 1)."""
    return (Persona.objects.filter(agent=agent).aggregate(v=models.Max("version"))["v"] or 0) + 1


def _usage_text(runs: int, releases: list[int]) -> str:
    parts = []
    if runs:
        parts.append(f"used by {runs} run{'s' if runs != 1 else ''}")
    if releases:
        numbers = ", ".join(str(n) for n in releases[:-1])
        numbers = f"{numbers} and {releases[-1]}" if numbers else str(releases[-1])
        parts.append(f"in release{'s' if len(releases) > 1 else ''} {numbers}")
    return " and ".join(parts)


def persona_versions(*, agent, pks: list[int] | None = None) -> list[Persona]:
    """The agent's persona versions (only ``pks`` when given), newest first, each with its state.

    Each version carries ``is_used`` (the rule), ``state`` (``PersonaState``), ``runs`` (executions
    that used it), ``release_numbers`` (the releases holding it, ascending), ``usage`` ("used by 4 runs
    and in release 2"), ``live_release`` (the number of the agent's active release when it holds this
    version and the agent is active, else None), ``is_current`` (the agent's active version) and
    ``last_edit_at`` / ``last_edit_by`` / ``last_edit_id`` (the last in-place edit: its time, who made
    it and its audit event; None when never edited). Three queries whatever the number of versions: the versions (with the usage rule, the run
    count and the last edit as subqueries), their releases, and the agent's active release when it was
    not loaded with the agent.
    """
    release_model = _related_model("releases")
    edits = AuditEvent.objects.filter(
        organization_id=agent.organization_id,
        object_type=Persona._meta.label_lower,
        object_id=Cast(OuterRef("pk"), models.CharField(max_length=64)),
        action=EDIT_ACTION,
    ).order_by("-at", "-id")
    runs = (
        _related_model("executions")
        .objects.filter(persona=OuterRef("pk"))
        .order_by()
        .values("persona")
        .annotate(n=Count("pk"))
        .values("n")
    )
    versions = list(
        with_usage(Persona.objects.filter(agent=agent, **({} if pks is None else {"pk__in": pks})))
        .select_related("created_by")
        .annotate(
            runs=Coalesce(Subquery(runs, output_field=models.IntegerField()), 0),
            last_edit_at=Subquery(edits.values("at")[:1]),
            last_edit_by=Subquery(edits.values("actor_label")[:1]),
            last_edit_id=Subquery(edits.values("pk")[:1]),
        )
        .prefetch_related(
            Prefetch(
                "releases",
                queryset=release_model.objects.order_by("number").only("pk", "number", "persona_id"),
                to_attr="holding_releases",
            )
        )
        .order_by("-version")
    )
    live_persona_id = None
    if agent.status == "active" and agent.active_release_id is not None:
        live_persona_id = agent.active_release.persona_id
    for persona in versions:
        persona.release_numbers = [r.number for r in persona.holding_releases]
        persona.state = PersonaState.USED if persona.is_used else PersonaState.DRAFT
        persona.usage = _usage_text(persona.runs, persona.release_numbers)
        persona.is_current = persona.is_active
        persona.live_release = agent.active_release.number if persona.pk == live_persona_id else None
    return versions


@dataclass(frozen=True)
class SaveOutcome:
    """What saving the persona editor will do, said before it happens.

    ``in_place``: the edited version changes (it is unused); otherwise the save creates ``version``
    (the agent's next number) and ``source`` stays as it is, for the reason in ``usage``.
    """

    in_place: bool
    version: int
    source: Persona | None
    usage: str


def persona_save_outcome(*, agent, persona: Persona | None = None) -> SaveOutcome:
    """What the editor's save does for ``persona`` (None: a new version): in place, or version N+1.

    Asks the rule (``used_condition``) in the query that reads the version's run count and releases.
    A run may use the version between this answer and the save: the service decides again under its
    lock, and the page reports what it did.
    """
    if persona is None:
        return SaveOutcome(in_place=False, version=persona_next_version(agent=agent), source=None, usage="")
    (row,) = persona_versions(agent=agent, pks=[persona.pk])
    if not row.is_used:
        return SaveOutcome(in_place=True, version=row.version, source=row, usage="")
    return SaveOutcome(in_place=False, version=persona_next_version(agent=agent), source=row, usage=row.usage)
