"""The domain's own refusals, raised by services and understood by every door.

They are Django ``ValidationError`` subclasses, so admin forms and pages show them like any
validation error (``prisma_glow.admin.base``); the API maps each to its error body and status in one
place (``prisma_glow.api.errors.exception_handler``): ``ConflictError`` 409 ``conflict``,
``BusyError`` 503 ``busy`` with ``Retry-After``, ``BudgetExceeded`` 429 ``budget_exceeded`` with
``Retry-After``. Nothing here knows about HTTP.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ConflictError(ValidationError):
    """A valid request that clashes with the current state (last owner, already revoked, in use…).
    The API answers 409; admin forms show it like any validation error."""


BUSY_MESSAGE = (
    "Other changes to this organisation were being saved at the same moment and this one could not "
    "be applied; nothing was changed. Try again in a moment."
)


class BusyError(ConflictError):
    """A valid write the database could not apply now: it kept losing deadlocks or serialisation
    failures (``prisma_glow.locking.retry_on_conflict``). The API answers 503 ``busy`` with
    ``Retry-After``; admin forms show it like any refusal."""


class BudgetExceeded(ValidationError):
    """A budget cannot cover a run's next provider call (``agents.runtime.budgets``). ``message`` says
    which budget, what it has consumed and when it resets; ``resets_at`` is the end of the budget's
    period (an aware datetime); ``execution`` the run recorded ``refused`` (None if none was). The API
    answers 429 ``budget_exceeded`` with ``Retry-After`` (seconds until ``retry_at``: the period's end,
    or sooner when only runs in progress are in the way); admin pages and the console show the
    message."""

    def __init__(self, message: str, *, resets_at, execution=None, retry_at=None):
        super().__init__(message, code="budget_exceeded")
        self.resets_at = resets_at
        self.retry_at = retry_at or resets_at
        self.execution = execution

    def retry_after(self, now) -> int:
        """Whole seconds from ``now`` until it is worth trying again (``retry_at``; at least 1)."""
        return max(1, int(-(-(self.retry_at - now).total_seconds() // 1)))
