"""A wheel built from the repository runs on its own (issue 14).

The wheel is built from the files git tracks (what a clean checkout holds), installed with pip into a
fresh virtual environment, and run from a directory outside the repository: ``prisma-glow check``,
``prisma-glow migrate``, ``prisma-glow seed_demo``, then a probe that looks up every template and
static file the repository ships. The new environment sees the shared environment's dependencies
through a ``.pth`` line (installing Django and the rest again would take minutes), never the
repository or its editable install: the probe asserts where the product was imported from.

Under pytest-xdist the workers share one build (a lock file in the run's temporary directory).
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path, PurePosixPath

import pytest

# Whatever database the suite runs on, the installed product runs on its own SQLite: once per run
# (make test runs it in the PostgreSQL pass).
pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("prisma_glow", "agents", "personas", "tools", "guardrails", "knowledge", "evaluations")
#: Variables of the suite's environment the installed product must not inherit.
NOT_INHERITED = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "DATABASE_URL",
    "REDIS_URL",
    "TEST_REDIS_URL",
    "DJANGO_STATIC_ROOT",
    "DJANGO_MEDIA_ROOT",
    "DJANGO_DEBUG",
    "PRISMA_GLOW_GUIDE_PATH",
)
TIMEOUT = 180

#: Run by the installed environment's interpreter with the path of a JSON file of names to look up.
PROBE = r"""
import json, sys
import django

django.setup()

import agents, guardrails, knowledge, personas, prisma_glow, tools
from django.contrib.staticfiles import finders
from django.core.management import get_commands, load_command_class
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.test import Client
from django.test.utils import setup_test_environment
from knowledge.models import Chunk, Document, DocumentStatus

def guide_page():
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.filter(is_staff=True).order_by("pk").first())
    response = client.get("/admin/guide/")
    return {"status": response.status_code, "missing": "The guide isn't installed" in response.content.decode()}


names = json.load(open(sys.argv[1]))
templates = {}
for name in names["templates"]:
    try:
        templates[name] = get_template(name).origin.name
    except TemplateDoesNotExist:
        templates[name] = None
executor = MigrationExecutor(connection)
seed_demo = sys.modules[type(load_command_class(get_commands()["seed_demo"], "seed_demo")).__module__]
setup_test_environment()
print(json.dumps({
    "modules": {m.__name__: m.__file__ for m in (prisma_glow, agents, personas, tools, guardrails, knowledge)},
    "templates": templates,
    "static": {name: finders.find(name) for name in names["static"]},
    "unapplied": [f"{m.app_label}.{m.name}" for m, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())],
    "documents": {s: Document.objects.filter(status=s).count() for s in DocumentStatus.values},
    "chunks": Chunk.objects.count(),
    "demo_data_dir": str(seed_demo.DATA_DIR),
    "login_page": Client().get("/admin/login/").status_code,
    "guide_page": guide_page(),
}))
"""


def _tracked_files() -> list[str]:
    """The repository's files as a clean checkout would hold them (tracked, or new and not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(p for p in set(out.split("\0")) if p and (ROOT / p).is_file())


def _in_packages(path: str) -> bool:
    return path.split("/", 1)[0] in PACKAGES


def _lookup_name(path: str, folder: str) -> str | None:
    """``agents/templates/admin/x.html`` → ``admin/x.html`` for folder ``templates``; None if not in one."""
    parts = PurePosixPath(path).parts
    if folder not in parts[:-1]:
        return None
    return "/".join(parts[parts.index(folder) + 1 :])


def _shipped(folder: str, *, in_packages: bool) -> dict[str, str]:
    """Lookup name → repository path of every template (or static file) in or outside the packages."""
    found = {}
    for path in _tracked_files():
        name = _lookup_name(path, folder)
        if name is not None and _in_packages(path) == in_packages:
            found[name] = path
    return found


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> dict:
    started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return {
        "argv": argv,
        "returncode": proc.returncode,
        "output": proc.stdout + proc.stderr,
        "seconds": round(time.monotonic() - started, 2),
        "cpu_seconds": round(_cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(cpu), 2),
    }


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def _must(step: dict) -> dict:
    if step["returncode"] != 0:
        raise AssertionError(f"{' '.join(step['argv'])} failed:\n{step['output']}")
    return step


def _build_install_and_run(work: Path) -> dict:
    src, dist, venv, run_dir = work / "src", work / "dist", work / "venv", work / "run"
    for path in _tracked_files():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, src / path)
    run_dir.mkdir()
    steps = {}

    # The shared environment's setuptools builds it: no index, no network (dev extras carry setuptools).
    steps["build"] = _must(
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
            + ["-q", "-w", str(dist), str(src)],
            cwd=run_dir,
        )
    )
    (wheel,) = dist.glob("prisma_glow-*.whl")

    _must(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=run_dir))
    python = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Only the dependencies: a path line adds the directory without running the .pth files in it, so
    # the editable install's finder (__editable__*.pth) stays off and the repository stays unseen.
    shared = [p for p in {*site.getsitepackages(), sysconfig.get_path("purelib")} if Path(p).is_dir()]
    assert all(Path(p).resolve() != ROOT for p in shared), shared
    (venv_site / "_shared_dependencies.pth").write_text("".join(f"{p}\n" for p in shared))

    steps["install"] = _must(
        _run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
            + ["-q", str(wheel)],
            cwd=run_dir,
        )
    )

    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        DJANGO_SETTINGS_MODULE="prisma_glow.settings",
        DJANGO_SECRET_KEY="test-only-secret-key-not-for-production-0123456789abcdef",
        PRISMA_GLOW_VAR_DIR=str(work / "var"),
    )
    script = str(venv / "bin" / "prisma-glow")
    steps["check"] = _run([str(python), "-m", "prisma_glow", "check"], cwd=run_dir, env=env)
    steps["migrate"] = _run([script, "migrate", "--noinput", "-v", "0"], cwd=run_dir, env=env)
    steps["seed_demo"] = _run([script, "seed_demo"], cwd=run_dir, env=env)

    names = {
        "templates": sorted(
            {*_shipped("templates", in_packages=True), *_shipped("templates", in_packages=False)}
        ),
        "static": sorted({*_shipped("static", in_packages=True), *_shipped("static", in_packages=False)}),
    }
    (work / "names.json").write_text(json.dumps(names))
    steps["probe"] = _must(_run([str(python), "-c", PROBE, str(work / "names.json")], cwd=run_dir, env=env))
    return {
        "wheel": zipfile.ZipFile(wheel).namelist(),
        "site_packages": str(venv_site),
        "steps": steps,
        "probe": json.loads(steps["probe"]["output"].strip().splitlines()[-1]),
    }


@pytest.fixture(scope="session")
def product(tmp_path_factory) -> dict:
    """The wheel built, installed and run once per test run (shared by the xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's directory, common to its workers
    work = base / "wheel"
    work.mkdir(exist_ok=True)
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = work / "result.json"
        if not result.exists():
            attempt = work / f"attempt-{os.getpid()}"
            result.write_text(json.dumps(_build_install_and_run(attempt)))
        return json.loads(result.read_text())


def _installed_here(product: dict, path: str | None) -> bool:
    """Whether ``path`` is a file of one of the product's packages in the new environment."""
    if path is None:
        return False
    site_packages = Path(product["site_packages"]).resolve()
    return any(Path(path).resolve().is_relative_to(site_packages / package) for package in PACKAGES)


def test_the_wheel_holds_every_file_under_the_packages_and_nothing_else(product):
    """Templates, static files, demo data, migrations: every file git tracks under a package ships."""
    expected = {path for path in _tracked_files() if _in_packages(path)}
    shipped = {name for name in product["wheel"] if not name.split("/", 1)[0].endswith(".dist-info")}
    assert sorted(expected - shipped) == [], "missing from the wheel"
    assert sorted(shipped - expected) == [], "in the wheel but not in the repository's packages"


def test_the_installed_wheel_checks_migrates_and_seeds_from_outside_the_repository(product):
    """``python -m prisma_glow check``, ``prisma-glow migrate`` and ``seed_demo`` run from the new venv."""
    steps = product["steps"]
    for name in ("check", "migrate", "seed_demo"):
        assert steps[name]["returncode"] == 0, f"{name}:\n{steps[name]['output']}"
    assert "System check identified no issues" in steps["check"]["output"]
    probe = product["probe"]
    # Imported from the new environment, not from the repository nor its editable install.
    for module, path in probe["modules"].items():
        assert _installed_here(product, path), f"{module} imported from {path}"
    assert probe["unapplied"] == []
    # seed_demo read every demo document from the installed package and processed it.
    demo_data = Path(probe["demo_data_dir"]).resolve()
    assert _installed_here(product, str(demo_data)), demo_data
    prefix = demo_data.relative_to(Path(product["site_packages"]).resolve()).as_posix() + "/"
    demo_files = [path for path in _tracked_files() if path.startswith(prefix)]
    assert probe["documents"]["ready"] == len(demo_files) > 0, probe["documents"]
    assert probe["chunks"] > 0
    assert probe["login_page"] == 200
    # The wheel carries no docs/: the staff guide's page says it is not installed (200, not an error).
    assert probe["guide_page"] == {"status": 200, "missing": True}


def _not_found(product: dict, *, in_packages: bool) -> list[str]:
    """Templates and static files of the repository that the installed product does not find in itself."""
    return [
        f"{path}: looked up as {name!r}, found {product['probe'][folder][name]}"
        for folder in ("templates", "static")
        for name, path in _shipped(folder, in_packages=in_packages).items()
        if not _installed_here(product, product["probe"][folder][name])
    ]


def test_the_installed_wheel_finds_the_templates_and_static_files_of_the_packages(product):
    """get_template and the static finders find each file under a package, in the installed package."""
    assert _shipped("templates", in_packages=True) and _shipped("static", in_packages=True)
    assert _not_found(product, in_packages=True) == []


def test_the_installed_wheel_finds_every_template_and_static_file_the_repository_ships(product):
    """No template or static file lives outside a package: a wheel could not carry it."""
    assert _not_found(product, in_packages=False) == []
