"""Assertions shared by the model tests: the database refuses a row, ``full_clean`` explains why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction

from prisma_glow.exceptions import ConflictError


def assert_db_rejects(make: Callable[[], object]) -> None:
    """The database itself refuses the write (constraint), even when validation is bypassed."""
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


def assert_invalid(obj: models.Model, message: str, *, field: str = NON_FIELD_ERRORS, **kwargs) -> None:
    """``full_clean()`` raises a ValidationError carrying ``message`` under ``field``."""
    with pytest.raises(ValidationError) as exc:
        obj.full_clean(**kwargs)
    errors = exc.value.message_dict
    assert field in errors, f"no error for {field!r}: {errors}"
    assert any(message in text for text in errors[field]), f"{message!r} not in {errors[field]}"


def assert_conflict(obj: models.Model, message: str, *, field: str, **kwargs) -> None:
    """``full_clean()`` raises a ConflictError (the API's 409) carrying ``message`` under ``field``:
    a duplicate names the field to change (``prisma_glow.uniqueness``)."""
    with pytest.raises(ConflictError) as exc:
        obj.full_clean(**kwargs)
    errors = exc.value.message_dict
    assert field in errors, f"no conflict for {field!r}: {errors}"
    assert any(message in text for text in errors[field]), f"{message!r} not in {errors[field]}"
