"""Abstract bases shared by every domain model, and the one rule of which rows an organisation owns."""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, router
from django.db.models import Q, UniqueConstraint

from prisma_glow.exceptions import ConflictError
from prisma_glow.uniqueness import conflict_fields


def organization_q(model: type[models.Model], organization) -> Q:
    """The rows of ``model`` that belong to ``organization``: through the path the model declares
    (``organization_path``: ``"organization"``, ``"agent__organization"``…, ``"pk"`` for the
    organisation itself), plus the rows without one when the model shares those with every
    organisation (``organization_shared_when_null``: built-in tools). The API, the staff UI and the
    API's related fields all scope with it."""
    path = model.organization_path
    condition = Q(**{path: organization.pk if path == "pk" else organization})
    if getattr(model, "organization_shared_when_null", False):
        condition |= Q(**{f"{path}__isnull": True})
    return condition


class DomainModel(models.Model):
    """Validation that tells a duplicate from bad input (``prisma_glow.uniqueness``).

    ``full_clean()`` raises ``ValidationError`` for field errors and broken check constraints (the
    API's 400) and, only when there are none, ``ConflictError`` for a clash with a unique field or
    unique constraint, keyed by the field(s) ``conflict_fields`` names (the API's 409 ``conflict``;
    admin forms show it on that field). ``validate_unique``/``validate_constraints`` do the same on
    their own, as model forms call them."""

    class Meta:
        abstract = True

    def validate_unique(self, exclude=None):
        try:
            super().validate_unique(exclude=exclude)
        except ValidationError as exc:
            raise ConflictError(exc.error_dict) from None

    def validate_constraints(self, exclude=None):
        using = router.db_for_write(self.__class__, instance=self)
        errors: dict = {}
        conflicts: dict = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                try:
                    constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as exc:
                    if not isinstance(constraint, UniqueConstraint):
                        errors = exc.update_error_dict(errors)
                        continue
                    for field in conflict_fields(model_class, constraint):
                        conflicts.setdefault(field, []).extend(
                            ValidationError(message, code="unique") for message in exc.messages
                        )
        if errors:
            raise ValidationError(errors)
        if conflicts:
            raise ConflictError(conflicts)

    def full_clean(self, exclude=None, validate_unique=True, validate_constraints=True):
        exclude = set(exclude or ())
        errors: dict = {}
        try:
            super().full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        # As Django does: only fields that passed validation are checked against other rows.
        exclude |= {name for name in errors if name != NON_FIELD_ERRORS}
        conflicts: dict = {}
        for check, wanted in (
            (self.validate_unique, validate_unique),
            (self.validate_constraints, validate_constraints),
        ):
            if not wanted:
                continue
            try:
                check(exclude=exclude)
            except ConflictError as exc:
                conflicts = exc.update_error_dict(conflicts)
            except ValidationError as exc:
                errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
        if conflicts:
            raise ConflictError(conflicts)


class TimeStampedModel(DomainModel):
    """Adds ``created_at`` / ``updated_at``, maintained by Django."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
