"""Budgets in the staff UI: the list (what each budget's current period has consumed) and the
dashboard panel, both reading ``agents.selectors.budgets_with_usage`` (one query whatever the number
of budgets) and warning of cost budgets that limit nothing for agents whose provider has no prices
(``selectors.budget_unpriced_agents``, one more query). The ModelAdmin is in ``agents.admin``."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.models import Budget, period_bounds
from agents.selectors import budget_limits_nothing_for, budget_unpriced_agents, budgets_with_usage
from prisma_glow import policy
from prisma_glow.admin.scoping import get_admin_access

#: From this share of the limit a budget is shown as nearly spent.
NEARLY_SPENT_PERCENT = 80


@dataclass
class Consumption:
    """A budget against its limit in the current period, as the pages show it."""

    budget: Budget
    used: int
    reserved: int
    #: A cost budget: the agents it cannot limit (their provider has no prices).
    limits_nothing_for: list[str] = field(default_factory=list)
    #: The organisation's currency, shown with a cost budget's amounts.
    currency: str = ""

    @property
    def percent(self) -> int:
        """Used and reserved, as a whole percentage of the limit (at most 100)."""
        limit = self.budget.limit_units
        return min(100, (self.used + self.reserved) * 100 // limit) if limit else 100

    @property
    def state(self) -> str:
        if self.used + self.reserved >= self.budget.limit_units:
            return "spent"
        return "nearly-spent" if self.percent >= NEARLY_SPENT_PERCENT else "ok"

    @property
    def shown(self) -> str:
        """ "EUR 0.9500 of EUR 1.0000" / "12,000 tokens of 100,000 tokens"."""
        return f"{self.budget.show(self.used, self.currency)} of {self.budget.show(self.budget.limit_units, self.currency)}"

    @property
    def reserved_shown(self) -> str:
        return self.budget.show(self.reserved, self.currency) if self.reserved else ""

    @property
    def warning(self) -> str:
        return limits_nothing_warning(self.limits_nothing_for)

    @property
    def resets_at(self):
        return period_bounds(self.budget.period)[1]


def consumption(budget: Budget, unpriced: dict[int, str] | None = None, *, currency: str = "") -> Consumption:
    """``budget`` (annotated by ``budgets_with_usage``) against its limit; with ``unpriced``
    (``selectors.budget_unpriced_agents``), the agents it cannot limit; amounts of a cost budget
    with ``currency`` (the organisation's)."""
    return Consumption(
        budget,
        budget.current_used or 0,
        budget.current_reserved or 0,
        budget_limits_nothing_for(budget, unpriced) if unpriced else [],
        currency,
    )


def limits_nothing_warning(names: list[str]) -> str:
    """The warning for a cost budget that cannot limit ``names`` (empty: none)."""
    if not names:
        return ""
    return (
        f"Limits nothing for {', '.join(names)}: no prices on the provider, so their calls cost 0. "
        "Set the provider's prices, or add a token budget."
    )


def budgets_panel(request, organization) -> dict:
    """The dashboard's budgets panel: every budget of ``organization`` against its limit this period,
    for those who may read budgets (one query)."""
    if not policy.decide(get_admin_access(request), "budget.view"):
        return {"budget_consumption": None}
    budgets = budgets_with_usage(Budget.objects.filter(organization=organization).select_related("agent"))
    rows = list(budgets)
    unpriced = budget_unpriced_agents(organization_id=organization.pk) if rows else {}
    return {
        "budget_consumption": [
            consumption(budget, unpriced, currency=organization.currency) for budget in rows
        ]
    }
