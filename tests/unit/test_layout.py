"""The package layout's rules, read from the source (DESIGN.md, "Repository layout").

Imports run one way: ``driftwatch`` may import the services, the services
import ``shared``, ``model_service`` and ``monitor`` never import each other,
and nothing imports ``driftwatch``. Settings are read in the settings modules
only: no other module reads ``os.environ``.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("driftwatch", "shared", "model_service", "monitor")
# What each package may import, besides itself and third parties.
ALLOWED = {
    "driftwatch": {"shared", "model_service", "monitor"},
    "model_service": {"shared"},
    "monitor": {"shared"},
    "shared": set(),
}
# Environment reads outside the settings modules, each with its reason.
ENVIRON_ALLOWED = {
    # Chosen at import time, before any settings exist: which KS kernel to compile.
    "monitor/drift/_kernels.py",
    # Sets OTEL_SEMCONV_STABILITY_OPT_IN for the OpenTelemetry libraries, reads nothing.
    "shared/telemetry/setup.py",
    # Quiets TensorFlow's C++ logging before TensorFlow is imported (the trainer).
    "driftwatch/trainer/train.py",
    # Passes the environment on to the stack's child processes.
    "driftwatch/cli/stack.py",
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def imported_packages(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("path,tree", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_run_one_way(path: str, tree: ast.Module) -> None:
    package = path.split("/")[0]
    upward = imported_packages(tree) - ALLOWED[package] - {package}
    assert not upward, f"{path} imports {sorted(upward)}"


def test_no_module_reads_the_environment_outside_settings() -> None:
    readers = set()
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.add(path)
    assert readers - ENVIRON_ALLOWED == set()


def test_no_two_modules_share_a_name_across_packages() -> None:
    """A file's name says what it holds: two ``state.py`` in two packages hold different things.

    ``app.py`` is each service's FastAPI app factory: the same role, named as FastAPI's docs name it.
    """
    by_name: dict[str, list[str]] = {}
    for path, _ in modules():
        name = path.rsplit("/", 1)[-1]
        if name not in ("__init__.py", "__main__.py", "app.py"):
            by_name.setdefault(name, []).append(path)
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_every_package_module_imports() -> None:
    """The examples' collection passes over import errors (test helpers with optional
    dependencies); a package module that fails to import fails here instead."""
    for path, _ in modules():
        if path.endswith("/__main__.py"):  # runs the command; never collected for examples
            continue
        name = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        importlib.import_module(name)
