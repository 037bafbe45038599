from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_builtin_tools(sender, using="default", **kwargs):
    """After ``migrate``: the built-in Tool rows exist and match ``tools.builtins`` in this database."""
    from tools.builtins import sync_builtin_tools

    sync_builtin_tools(using=using)


class ToolsConfig(AppConfig):
    name = "tools"

    def ready(self) -> None:
        post_migrate.connect(_sync_builtin_tools, sender=self, dispatch_uid="tools.sync_builtin_tools")
