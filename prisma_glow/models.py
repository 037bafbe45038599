"""Abstract bases shared by every domain model, and the one rule of which rows an organisation owns."""

from django.db import models
from django.db.models import Q


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


class TimeStampedModel(models.Model):
    """Adds ``created_at`` / ``updated_at``, maintained by Django."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
