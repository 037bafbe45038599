from django.apps import AppConfig, apps
from django.db import models


class AuditConfig(AppConfig):
    name = "prisma_glow.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        require_json_values()


def require_json_values() -> None:
    """Every model ``JSONField`` refuses, in ``full_clean``, a value JSON cannot carry (NaN, the
    infinities, an integer too long to read back): as a field error, before anything is written, since
    such a value cannot be stored the same on both databases nor hashed the same by the audit log once
    read back. Added to the field's ``default_validators`` (the class's, then this one), which, unlike
    ``validators=``, is not part of the field's migration state."""
    from prisma_glow.audit.canonical import validate_json_value

    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.get_fields():
            if isinstance(field, models.JSONField) and validate_json_value not in field.default_validators:
                field.default_validators = [*field.default_validators, validate_json_value]
                field.__dict__.pop("validators", None)  # a cached_property, if already read
