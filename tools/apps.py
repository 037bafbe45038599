from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_builtin_tools(sender, using="default", apps=None, **kwargs):
    """After ``migrate``: the built-in Tool rows exist and match ``tools.builtins`` in this database.

    Not after migrating back past the tools table (``migrate tools zero``): there is none to fill."""
    from tools.builtins import sync_builtin_tools

    if apps is not None:
        try:
            apps.get_model("tools", "Tool")
        except LookupError:
            return

    sync_builtin_tools(using=using)


class ToolsConfig(AppConfig):
    name = "tools"

    def ready(self) -> None:
        post_migrate.connect(_sync_builtin_tools, sender=self, dispatch_uid="tools.sync_builtin_tools")
