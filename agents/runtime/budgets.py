"""Budgets at run time: before each provider call a run reserves the call's largest possible cost in
every budget that applies to it (its organisation's and its agent's, per day and per month), and
settles the real figure after.

- **Reserve.** ``Ledger.reserve(charge)``, before the call: for each budget, one conditional
  ``UPDATE`` of its period's ``BudgetUsage`` row (``used + reserved + amount <= limit``), all in one
  transaction, with a ``BudgetReservation`` row per budget saying what the run holds. The condition is
  judged on the row as it is when the ``UPDATE`` gets it (PostgreSQL re-reads a row another
  transaction changed meanwhile; SQLite runs write transactions one at a time), so concurrent runs can
  never reserve past a limit together: with a budget that covers ten calls, ten reserve and the rest
  are refused. Budgets are taken in one order (month before day, then by id), so two runs never wait
  for each other's rows in opposite orders. A budget that cannot cover the call refuses it
  (``BudgetExceeded``); the run ends ``refused``.
- **Settle.** The call's real figure (``Charge.of``: tokens in + out, cost at the provider's prices;
  the whole reservation when the provider reported no usage, nothing when it failed before
  answering) replaces its reservation when the run's next call reserves (in the same ``UPDATE``)
  or when the run's record is written (``Ledger.settle``, in ``record.record_finish``'s transaction),
  so a run that ends, however it ends, releases what it held.
- **Stale reservations.** A run whose process died holds its reservation until it is released: when
  a budget seems exhausted, the reservations of runs started longer ago than any run may last
  (``STALE_AFTER``), or already finished, are released first (``release_stale``), and the
  reservation is tried once more. Whoever deletes a ``BudgetReservation`` row takes its amount off
  ``reserved``, so a release and a late settlement never both do.
- **Before a run.** ``precheck`` (one query) refuses a run that no budget could let make even its
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

from django.db import transaction
from django.db.models import BigIntegerField, F, Q, Value
from django.utils import timezone

from agents.models import (
    Budget,
    BudgetMetric,
    BudgetPeriod,
    BudgetReservation,
    BudgetUsage,
    Execution,
    ExecutionStatus,
    period_bounds,
    show_units,
    to_units,
)
from agents.runtime.providers.base import ModelRequest, ModelResponse, cost_of, estimate_tokens
from prisma_glow.exceptions import BudgetExceeded
from prisma_glow.locking import retry_on_conflict

#: A reservation older than this belongs to a run that cannot still be going: the longest agent
#: timeout (``Agent.timeout_seconds``, at most 900 s) plus five minutes.
STALE_AFTER = dt.timedelta(seconds=900 + 300)


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


def _move(budget: Budget, start: dt.datetime, *, used: int = 0, reserved: int = 0, check: bool) -> bool:
    """Add ``used`` and ``reserved`` to the budget's row for the period starting at ``start``; with
    ``check``, only if the limit still covers the row afterwards. False when nothing was changed."""
    rows = BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start)
    if check:
        room = Value(budget.limit_units - used - reserved, output_field=BigIntegerField())
        rows = rows.filter(used__lte=room - F("reserved"))
    return rows.update(used=F("used") + used, reserved=F("reserved") + reserved) == 1


def _reserve_new(budget: Budget, start: dt.datetime, amount: int) -> bool:
    """Reserve ``amount`` in a period's row, creating the row on first use (concurrent first uses
    insert it once: ``ON CONFLICT DO NOTHING``)."""
    if _move(budget, start, reserved=amount, check=True):
        return True
    if BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start).exists():
        return False
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
                    raise _Short(budget, start, amount)
                if not kept:
                    new_rows.append(self._row(budget, start, amount))
            else:
                if previous is not None:  # the last call's period has ended: settle it there
                    self._settle_one(budget, previous, spent)
                if not _reserve_new(budget, start, amount):
                    raise _Short(budget, start, amount)
                new_rows.append(self._row(budget, start, amount))
            new_held[budget.pk] = (start, amount)
        if new_rows:
            BudgetReservation.objects.bulk_create(new_rows)
        self.held, self.pending = new_held, NOTHING

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


def release_stale(budget: Budget, start: dt.datetime, *, now: dt.datetime | None = None) -> int:
    """Release the reservations of ``budget``'s period starting at ``start`` held by runs that cannot
    still be going (finished, or started more than ``STALE_AFTER`` ago: their process died). Returns
    how many were released."""
    now = now or timezone.now()
    stale = list(
        BudgetReservation.objects.filter(budget_id=budget.pk, period_start=start)
        .filter(
            Q(execution__created_at__lt=now - STALE_AFTER) | ~Q(execution__status=ExecutionStatus.RUNNING)
        )
        .values_list("pk", "amount")
    )
    released = 0
    for pk, amount in stale:
        with transaction.atomic():
            if BudgetReservation.objects.filter(pk=pk).delete()[0]:
                _move(budget, start, reserved=-amount, check=False)
                released += 1
    return released


def whose(budget: Budget) -> str:
    """Whose budget it is, as a sentence starts: "The organisation's" / "The agent 'VAT adviser''s"."""
    return f"The agent '{budget.agent.name}''s" if budget.agent_id else "The organisation's"


def refusal(
    budget: Budget, start: dt.datetime, amount: int, *, now: dt.datetime | None = None, usage=None
) -> BudgetExceeded:
    """Why ``budget`` cannot cover ``amount`` now, as a person can act on it."""
    if usage is None:
        usage = (
            BudgetUsage.objects.filter(budget_id=budget.pk, period_start=start)
            .values("used", "reserved")
            .first()
        )
    used, reserved = (usage["used"], usage["reserved"]) if usage else (0, 0)
    resets_at = period_bounds(budget.period, now)[1]
    local = timezone.localtime(resets_at)
    parts = [f"{budget.show(used)} used"]
    if reserved:
        parts.append(f"{budget.show(reserved)} reserved by runs in progress")
    message = (
        f"{whose(budget)} {budget.period_adjective} {budget.metric} budget ({budget.show(budget.limit_units)}) "
        f"cannot cover this run's next model call, which may cost up to {budget.show(amount)} "
        f"({', '.join(parts)}). It resets at {local:%Y-%m-%d %H:%M} ({local.tzname()}); "
        "until then an admin can raise the limit under Budgets."
    )
    return BudgetExceeded(message, resets_at=resets_at)


def precheck(
    budgets: Iterable[Budget], charge: Charge, *, now: dt.datetime | None = None
) -> BudgetExceeded | None:
    """The refusal of a run that no budget could let make even ``charge`` (its smallest call), read
    in one query; None when every budget still has room for it."""
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
        row = rows.get(budget.pk, {"used": 0, "reserved": 0})
        amount = charge.amount(budget)
        if row["used"] + row["reserved"] + amount > budget.limit_units:
            return refusal(budget, starts[budget.pk], amount, now=now, usage=row)
    return None


def smallest_call(system_prompt: str, question: str, max_tokens: int, provider_row) -> Charge:
    """The least a run's first call may cost: the persona and the question, plus ``max_tokens``."""
    return Charge.largest(
        estimate_tokens(system_prompt) + estimate_tokens(question), max_tokens, provider_row
    )


__all__ = ["Charge", "Ledger", "period_bounds", "precheck", "release_stale", "show_units", "smallest_call"]
