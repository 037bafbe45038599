"""``manage.py`` for an installed wheel: ``prisma-glow <command>`` or ``python -m prisma_glow <command>``.

The repository's top-level ``manage.py`` is not part of any package, so a wheel cannot carry it; this
module is the same entry point inside the package (``prisma-glow migrate``, ``prisma-glow check``,
``prisma-glow db_worker``…).
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prisma_glow.settings")
    from django.core.management import execute_from_command_line

    # Django names the program after argv[0]; "__main__.py" in its help would mislead.
    execute_from_command_line(["prisma-glow", *sys.argv[1:]])


if __name__ == "__main__":
    main()
