"""Budgets at run time: before each provider call a run reserves the call's largest possible cost in
every budget that applies to it (its organisation's and its agent's, per day and per month), and
settles the real figure after.

- **Reserve.** ``Ledger.reserve(charge)``, before the call: for each budget, one conditional
  ``UPDATE`` of its period's ``BudgetUsage`` row (``used + reserved + amount <= limit``, the limit as
  it is now: ``current_limit``; a budget deleted since the run started no longer applies), all in one
  transaction, with a ``BudgetReservation`` row per budget saying what the run holds. The condition is
  judged on the row as it is when the ``UPDATE`` gets it (PostgreSQL re-reads a row another
  transaction changed meanwhile; SQLite runs write transactions one at a time), so concurrent runs can
  never reserve past a limit together: with a budget that covers ten calls, ten reserve and the rest
  are refused. Budgets are taken in one order (month before day, then by id), so two runs never wait
  for each other's rows in opposite orders. A budget that cannot cover the call refuses it
  (``BudgetExceeded``); the run ends ``refused``.
- **Settle.** The call's real figure (``Charge.of``: tokens in + out, cost at the provider's prices;
  the whole reservation when the provider reported no usage or the call failed in a way it may still
  bill — a timeout, an unreadable answer, a broken stream —, nothing only when it provably did not
  process the call: ``ProviderError.processed`` False) replaces its reservation when the run's next call reserves (in the same ``UPDATE``)
  or when the run's record is written (``Ledger.settle``, in ``record.record_finish``'s transaction),
  so a run that ends, however it ends, releases what it held.
- **Stale reservations.** A run whose process died holds its reservation until it is released: when
  a budget seems exhausted (in ``precheck`` and in ``Ledger.reserve``), the reservations of runs that
  cannot still be going (``models.run_is_live``: finished, or running past their agent's time limit
  plus ``RUN_GRACE``, the rule conversations use too) are released first (``release_stale``), and
  the budget is checked once more; ``manage.py release_budget_reservations`` releases them all.
  Whoever deletes a ``BudgetReservation`` row takes its amount off ``reserved`` — the amount the row
  holds as it is deleted (``DELETE … RETURNING``) —, so a release and a late settlement never both do.
- **Retry-After.** The refusing budget's period end, or, when only runs in progress are in the way,
  the moment the oldest of their reservations must have been released; a call larger than the whole
  limit is told waiting will not help.
- **Before a run.** ``precheck`` (one query while there is room) refuses a run that no budget could let make even its
  smallest call (the question and the persona at the prices, plus ``max_tokens``), so a stream is
  refused before it starts, with the same answer (429) as a run refused at its first call.

Amounts are integers: tokens, or millionths of the currency (``models.COST_UNITS_PER_CURRENCY``), so
they add and compare exactly on both databases. Periods are calendar days and months in
``settings.TIME_ZONE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Q, Subquery, Value
from django.db.models.functions import Round
from django.utils import timezone

from agents.models import (
    COST_UNITS_PER_CURRENCY,
    Budget,
    BudgetMetric,
    BudgetPeriod,
    BudgetReservation,
    BudgetUsage,
    Execution,
    period_bounds,
    run_is_live,
    run_live_until,
    running_since,
    show_units,
    to_units,
)
from agents.runtime.providers.base import ModelRequest, ModelResponse, cost_of, estimate_tokens
from prisma_glow.exceptions import BudgetExceeded
from prisma_glow.locking import retry_on_conflict


@dataclass(frozen=True)
class Charge:
    """What a provider call may cost, or did: tokens (in + out) and cost in millionths."""

    tokens: int
    cost: int

    def amount(self, budget: Budget) -> int:
        return self.tokens if budget.metric == BudgetMetric.TOKENS else self.cost

    @classmethod
    def largest(cls, tokens_in: int, tokens_out: int, provider_row) -> Charge:
        """The cost of ``tokens_in`` + ``tokens_out`` at the provider's prices, rounded up."""
        cost = Decimal(0)
        if provider_row is not None:
            cost = (
                Decimal(tokens_in) * provider_row.price_input_per_1k
                + Decimal(tokens_out) * provider_row.price_output_per_1k
            ) / 1000
        return cls(tokens_in + tokens_out, to_units(BudgetMetric.COST, cost))

    @classmethod
    def of_request(cls, request: ModelRequest, provider_row) -> Charge:
        """A call's largest possible cost: its input estimate plus ``max_tokens``."""
        return cls.largest(request.input_estimate(), request.max_tokens or 0, provider_row)

    @classmethod
    def of(cls, response: ModelResponse, provider_row, reserved: Charge) -> Charge:
        """What a call that answered cost: the provider's usage at its prices, or, when it reported
        no usage, all that was reserved (a budget never counts less than may have been spent)."""
        if response.tokens_in is None or response.tokens_out is None:
            return reserved
        cost = cost_of(response, provider_row) or Decimal(0)
        return cls(response.tokens_in + response.tokens_out, to_units(BudgetMetric.COST, cost))


#: A call that cost nothing (or the nothing a failed call is counted as).
NOTHING = Charge(0, 0)


def lock_order(budget: Budget) -> tuple[int, int]:
    """The one order every run takes budgets in: months first (a refusal then names the budget whose
    reset the caller must wait for), then by id."""
    return (0 if budget.period == BudgetPeriod.MONTH else 1, budget.pk)


class _Short(Exception):
    """A budget could not cover the amount (rolls the reservation's transaction back)."""

    def __init__(self, budget: Budget, start: dt.datetime, amount: int):
        self.budget, self.start, self.amount = budget, start, amount


def current_limit(budget: Budget) -> Subquery:
    """The budget's limit as it is now, in counting units, read in SQL (a run compares against the
    limit an admin has just raised or lowered, not the one loaded when it started; NULL when the
    budget was deleted). ``limit`` has six decimals, so the product is a whole number: ``Round`` only
    absorbs SQLite's floating-point arithmetic."""
    factor = 1 if budget.metric == BudgetMetric.TOKENS else COST_UNITS_PER_CURRENCY
    return Subquery(
        Budget.objects.filter(pk=budget.pk)
        .annotate(units=Round(F("limit") * Value(factor)))
        .values("units")[:1],
        output_field=BigIntegerField(),
    )


def _move(budget: Budget, start: dt.datetime, *, used: int = 0, reserved: int = 0, check: bool) -> bool:
    """Add ``used`` and ``reserved`` to the budget's row for the period starting at ``start``; with
    ``check``, only if the budget's current limit still covers the row afterwards (the condition on
    ``used`` and ``reserved`` is on the updated row itself, so PostgreSQL judges it on the row as the
    UPDATE gets it). False when nothing was changed."""
    rows = BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start)
    if check:
        room = current_limit(budget) - Value(used + reserved, output_field=BigIntegerField())
        rows = rows.filter(used__lte=room - F("reserved"))
    return rows.update(used=F("used") + used, reserved=F("reserved") + reserved) == 1


def _reserve_new(budget: Budget, start: dt.datetime, amount: int) -> bool:
    """Reserve ``amount`` in a period's row, creating the row on first use (concurrent first uses
    insert it once: ``ON CONFLICT DO NOTHING``)."""
    if _move(budget, start, reserved=amount, check=True):
        return True
    if BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start).exists():
        return False
    if not Budget.objects.filter(pk=budget.pk).exists():
        return False  # deleted meanwhile: the caller drops it
    BudgetUsage.objects.bulk_create(
        [BudgetUsage(budget_id=budget.pk, period_start=start)], ignore_conflicts=True
    )
    return _move(budget, start, reserved=amount, check=True)


class Ledger:
    """What one run holds of its budgets (``budgets``: those of its organisation and agent), and the
    real figure of its last call not yet settled."""

    def __init__(self, budgets: Iterable[Budget], execution: Execution):
        self.budgets = sorted(budgets, key=lock_order)
        self.execution = execution
        #: budget id → (period start, amount held)
        self.held: dict[int, tuple[dt.datetime, int]] = {}
        #: The last call's real figure, settled with the next reservation or at the end.
        self.pending: Charge = NOTHING

    def __bool__(self) -> bool:
        return bool(self.budgets)

    def reserve(self, charge: Charge, *, now: dt.datetime | None = None) -> None:
        """Settle the previous call and reserve ``charge`` for the next one in every budget, or raise
        ``BudgetExceeded`` (the previous call settled, nothing held)."""
        if not self.budgets:
            return
        now = now or timezone.now()
        try:
            self._reserve(charge, now)
        except _Short as short:
            if not release_stale(short.budget, short.start, now=now):
                self._refuse(short, now)
            try:
                self._reserve(charge, now)
            except _Short as short:
                self._refuse(short, now)

    def _refuse(self, short: _Short, now: dt.datetime):
        self._settle_now()
        raise refusal(short.budget, short.start, short.amount, now=now)

    @retry_on_conflict
    @transaction.atomic
    def _reserve(self, charge: Charge, now: dt.datetime) -> None:
        new_held: dict[int, tuple[dt.datetime, int]] = {}
        new_rows = []
        gone = set()
        for budget in self.budgets:
            start = period_bounds(budget.period, now)[0]
            amount = charge.amount(budget)
            spent = self.pending.amount(budget)
            previous = self.held.get(budget.pk)
            if previous is not None and previous[0] == start:
                # Same period: the reservation row's amount changes, and one UPDATE settles the last
                # call and reserves the next (if a release took the old reservation, only the new).
                kept = (
                    BudgetReservation.objects.filter(
                        budget_id=budget.pk, period_start=start, execution_id=self.execution.pk
                    ).update(amount=amount)
                    == 1
                )
                released = previous[1] if kept else 0
                if not _move(budget, start, used=spent, reserved=amount - released, check=True):
                    if _deleted(budget):
                        gone.add(budget.pk)
                        continue
                    raise _Short(budget, start, amount)
                if not kept:
                    new_rows.append(self._row(budget, start, amount))
            else:
                if previous is not None:  # the last call's period has ended: settle it there
                    self._settle_one(budget, previous, spent)
                if not _reserve_new(budget, start, amount):
                    if _deleted(budget):
                        gone.add(budget.pk)
                        continue
                    raise _Short(budget, start, amount)
                new_rows.append(self._row(budget, start, amount))
            new_held[budget.pk] = (start, amount)
        if new_rows:
            BudgetReservation.objects.bulk_create(new_rows)
        self.held, self.pending = new_held, NOTHING
        if gone:  # deleted since the run started: it no longer applies
            self.budgets = [budget for budget in self.budgets if budget.pk not in gone]

    def _row(self, budget: Budget, start: dt.datetime, amount: int) -> BudgetReservation:
        return BudgetReservation(
            budget_id=budget.pk, period_start=start, execution_id=self.execution.pk, amount=amount
        )

    def _settle_one(self, budget: Budget, held: tuple[dt.datetime, int], spent: int) -> None:
        start, amount = held
        taken = BudgetReservation.objects.filter(
            budget_id=budget.pk, period_start=start, execution_id=self.execution.pk
        ).delete()[0]
        _move(budget, start, used=spent, reserved=-amount if taken else 0, check=False)

    def spent(self, charge: Charge) -> None:
        """The real figure of the call just made (settled with the next reservation or at the end)."""
        self.pending = charge

    def settle(self) -> None:
        """Count the last call's real figure and release what the run holds, in the caller's
        transaction (``record.record_finish``'s, which writes the run's final state)."""
        for budget in self.budgets:
            held = self.held.get(budget.pk)
            if held is not None:
                self._settle_one(budget, held, self.pending.amount(budget))

    @retry_on_conflict
    @transaction.atomic
    def _settle_now(self) -> None:
        self.settle()
        self.held, self.pending = {}, NOTHING


def _deleted(budget: Budget) -> bool:
    """Whether the budget was deleted since the run loaded it (it no longer applies)."""
    return not Budget.objects.filter(pk=budget.pk).exists()


def _take(pk: int) -> int | None:
    """Delete a reservation row and return the amount it held at that moment, or None when someone
    else took it first. One statement (``DELETE … RETURNING``): the amount subtracted is the row's as
    the delete finds it, even if its run re-reserved a different amount since the row was read."""
    table = connection.ops.quote_name(BudgetReservation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s RETURNING amount", [pk])  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else None


def release_stale(budget: Budget, start: dt.datetime, *, now: dt.datetime | None = None) -> int:
    """Release the reservations of ``budget``'s period starting at ``start`` held by runs that cannot
    still be going (``models.run_is_live``: finished, or started longer ago than their agent's time
    limit plus ``RUN_GRACE``: their process died). Returns how many were released."""
    now = now or timezone.now()
    rows = BudgetReservation.objects.filter(budget_id=budget.pk, period_start=start).values_list(
        "pk",
        "execution__status",
        "execution__created_at",
        "execution__resumed_at",
        "execution__agent__timeout_seconds",
    )
    released = 0
    for pk, status, created_at, resumed_at, timeout in rows:
        if run_is_live(status, running_since(created_at, resumed_at), timeout, now=now):
            continue
        # A run that is not live never becomes live again: no need to re-check under the delete.
        with transaction.atomic():
            amount = _take(pk)
            if amount is not None:
                _move(budget, start, reserved=-amount, check=False)
                released += 1
    return released


def release_all_stale(*, now: dt.datetime | None = None, organization=None) -> int:
    """``release_stale`` for every budget period that holds reservations (the management command
    ``release_budget_reservations``); returns how many reservations were released."""
    rows = BudgetReservation.objects.all()
    if organization is not None:
        rows = rows.filter(budget__organization=organization)
    released = 0
    pairs = rows.values_list("budget_id", "period_start").distinct().order_by()
    budgets = Budget.objects.in_bulk({budget_id for budget_id, _ in pairs})
    for budget_id, start in pairs:
        if budget_id in budgets:
            released += release_stale(budgets[budget_id], start, now=now)
    return released


def whose(budget: Budget) -> str:
    """Whose budget it is, as a sentence starts: "The organisation's" / "The agent 'VAT adviser''s"."""
    return f"The agent '{budget.agent.name}''s" if budget.agent_id else "The organisation's"


def _until_reservations_end(budget: Budget, start: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """When the oldest reservation of ``budget``'s period will at the latest be released (its run
    finished or stale): the first moment room may come back without a reset; None when none is held."""
    rows = BudgetReservation.objects.filter(budget_id=budget.pk, period_start=start).values_list(
        "execution__created_at", "execution__resumed_at", "execution__agent__timeout_seconds"
    )
    ends = [
        run_live_until(running_since(created_at, resumed_at), timeout)
        for created_at, resumed_at, timeout in rows
    ]
    return min(ends) if ends else None


def refusal(
    budget: Budget, start: dt.datetime, amount: int, *, now: dt.datetime | None = None, usage=None
) -> BudgetExceeded:
    """Why ``budget`` cannot cover ``amount`` now, as a person can act on it, compared with its limit
    as it is now. ``Retry-After`` (``retry_at``) is the period's end, unless only runs in progress are
    in the way: then the moment they must have ended, at the latest."""
    now = now or timezone.now()
    if usage is None:
        usage = (
            BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start)
            .values("used", "reserved")
            .first()
        )
    used, reserved = (usage["used"], usage["reserved"]) if usage else (0, 0)
    limit = Budget.objects.filter(pk=budget.pk).values_list("limit", flat=True).first()
    limit_units = to_units(budget.metric, limit) if limit is not None else budget.limit_units
    resets_at = period_bounds(budget.period, now)[1]
    local = timezone.localtime(resets_at)
    parts = [f"{budget.show(used)} used"]
    if reserved:
        parts.append(f"{budget.show(reserved)} reserved by runs in progress")
    head = (
        f"{whose(budget)} {budget.period_adjective} {budget.metric} budget ({budget.show(limit_units)}) "
        f"cannot cover this run's next model call, which may cost up to {budget.show(amount)}"
    )
    head = f"{head} ({', '.join(parts)})"
    retry_at = resets_at
    if amount > limit_units:
        message = (
            f"{head}: the call alone may cost more than the whole limit, so waiting for the budget to "
            "reset will not help. An admin can raise the limit under Budgets, or lower the persona's "
            "maximum answer length (max tokens)."
        )
    elif used + amount <= limit_units and reserved:
        ends = _until_reservations_end(budget, start, now)
        retry_at = min(resets_at, max(ends or now, now + dt.timedelta(seconds=1)))
        message = (
            f"{head}. Only runs in progress are in the way: try again in a moment (the oldest of their "
            f"reservations ends by {timezone.localtime(retry_at):%Y-%m-%d %H:%M:%S} ({local.tzname()}) "
            "at the latest)."
        )
    else:
        message = (
            f"{head}. It resets at {local:%Y-%m-%d %H:%M} ({local.tzname()}); "
            "until then an admin can raise the limit under Budgets."
        )
    return BudgetExceeded(message, resets_at=resets_at, retry_at=retry_at)


def precheck(
    budgets: Iterable[Budget], charge: Charge, *, now: dt.datetime | None = None
) -> BudgetExceeded | None:
    """The refusal of a run that no budget could let make even ``charge`` (its smallest call), read
    in one query; None when every budget still has room for it. A budget that seems short while it
    holds reservations first releases those of runs that cannot still be going (``release_stale``,
    the rule ``Ledger.reserve`` follows too), and one that seems short is compared with its limit as
    it is now (an admin may have raised it, or deleted the budget)."""
    budgets = sorted(budgets, key=lock_order)
    if not budgets:
        return None
    now = now or timezone.now()
    starts = {budget.pk: period_bounds(budget.period, now)[0] for budget in budgets}
    where = Q()
    for budget in budgets:
        where |= Q(budget_id=budget.pk, period_start=starts[budget.pk])
    rows = {
        row["budget_id"]: row
        for row in BudgetUsage.objects.filter(where).values("budget_id", "used", "reserved")
    }
    for budget in budgets:
        start = starts[budget.pk]
        row = rows.get(budget.pk, {"used": 0, "reserved": 0})
        amount = charge.amount(budget)
        if row["used"] + row["reserved"] + amount <= budget.limit_units:
            continue
        # Short, as loaded: read again after releasing stale reservations, with the current limit.
        if row["reserved"]:
            release_stale(budget, start, now=now)
        current = (
            BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start)
            .annotate(limit_units=current_limit(budget))
            .values("used", "reserved", "limit_units")
            .first()
        )
        if current is None:
            limit = Budget.objects.filter(pk=budget.pk).values_list("limit", flat=True).first()
            if limit is None:
                continue  # deleted: it no longer applies
            current = {"used": 0, "reserved": 0, "limit_units": to_units(budget.metric, limit)}
        elif current["limit_units"] is None:
            continue
        if current["used"] + current["reserved"] + amount > current["limit_units"]:
            return refusal(budget, start, amount, now=now, usage=current)
    return None


def smallest_call(system_prompt: str, question: str, max_tokens: int, provider_row) -> Charge:
    """The least a run's first call may cost: the persona and the question, plus ``max_tokens``."""
    return Charge.largest(
        estimate_tokens(system_prompt) + estimate_tokens(question), max_tokens, provider_row
    )


__all__ = [
    "Charge",
    "Ledger",
    "period_bounds",
    "precheck",
    "release_all_stale",
    "release_stale",
    "show_units",
    "smallest_call",
]
