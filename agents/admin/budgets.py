"""Budgets in the staff UI: the list (what each budget's current period has consumed) and the
dashboard panel, both reading ``agents.selectors.budgets_with_usage`` (one query whatever the number
of budgets). The ModelAdmin is in ``agents.admin``."""

from __future__ import annotations

from dataclasses import dataclass

from agents.models import Budget, period_bounds
from agents.selectors import budgets_with_usage
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
        """ "0.95 of 1.00" / "12,000 tokens of 100,000 tokens"."""
        return f"{self.budget.show(self.used)} of {self.budget.show(self.budget.limit_units)}"

    @property
    def reserved_shown(self) -> str:
        return self.budget.show(self.reserved) if self.reserved else ""

    @property
    def resets_at(self):
        return period_bounds(self.budget.period)[1]


def consumption(budget: Budget) -> Consumption:
    """``budget`` (annotated by ``budgets_with_usage``) against its limit."""
    return Consumption(budget, budget.current_used or 0, budget.current_reserved or 0)


def budgets_panel(request, organization) -> dict:
    """The dashboard's budgets panel: every budget of ``organization`` against its limit this period,
    for those who may read budgets (one query)."""
    if not policy.decide(get_admin_access(request), "budget.view"):
        return {"budget_consumption": None}
    budgets = budgets_with_usage(Budget.objects.filter(organization=organization).select_related("agent"))
    return {"budget_consumption": [consumption(budget) for budget in budgets]}
