"""What the product imports is declared, and the locks pin versions the ranges allow.

A module imported at run time but brought only by another package's test or optional
dependencies works in the test venv and fails on a user's machine; CI's serve smoke run
(`.ci/smoke.py`) catches that by serving from a venv without the test extra, and these
checks name the missing declaration without a server."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
RUN_TIME_SOURCES = [
    *sorted((ROOT / "feedserver").rglob("*.py")),
    ROOT / "wsgi.py",
    ROOT / "config" / "gunicorn.conf.py",
]
LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?:\s*;\s*(.+))?$")


def requirements(extra: str | None = None) -> list[Requirement]:
    """The project's requirements that apply on this machine: run time, or one extra's."""
    texts = (
        PYPROJECT["dependencies"] if extra is None else PYPROJECT["optional-dependencies"][extra]
    )
    found = [Requirement(text) for text in texts]
    return [r for r in found if r.marker is None or r.marker.evaluate()]


def imported_top_level_modules(path: Path) -> set[str]:
    """The top-level names of every module one source file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def third_party_imports() -> list[tuple[str, str]]:
    """(source file, module) for every module outside the standard library and the project
    that the code a server runs imports."""
    found: list[tuple[str, str]] = []
    for path in RUN_TIME_SOURCES:
        for module in sorted(imported_top_level_modules(path)):
            if module not in sys.stdlib_module_names and module not in {"feedserver", "__future__"}:
                found.append((str(path.relative_to(ROOT)), module))
    return found


def declared_distributions() -> set[str]:
    """Every distribution a plain install of the project brings: its requirements, theirs
    (with the extras asked for), and so on."""
    seen: set[str] = set()
    pending = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements()]
    while pending:
        name, extras = pending.pop()
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for text in importlib.metadata.requires(name) or []:
            needed = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in environments):
                pending.append((canonicalize_name(needed.name), frozenset(needed.extras)))
    return {key.partition("[")[0] for key in seen}


def imports_outside(distributions: set[str]) -> list[str]:
    """Each import of the code a server runs whose module no distribution of these brings."""
    providers = importlib.metadata.packages_distributions()
    return [
        f"{source} imports {module}"
        for source, module in third_party_imports()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & distributions
    ]


def test_every_module_the_product_imports_is_declared() -> None:
    missing = imports_outside(declared_distributions())
    assert not missing, missing


def test_modules_imported_directly_are_direct_requirements() -> None:
    """A module the product imports itself is named in pyproject.toml, not left to arrive
    with another package (Flask could stop bringing MarkupSafe)."""
    indirect = imports_outside({canonicalize_name(r.name) for r in requirements()})
    assert not indirect, indirect


def test_gunicorns_gevent_worker_has_what_it_imports() -> None:
    """gunicorn's gevent worker imports packaging, which gunicorn declares only in its
    `gevent` extra: the project asks for that extra."""
    gunicorn = next(r for r in requirements() if canonicalize_name(r.name) == "gunicorn")
    assert "gevent" in gunicorn.extras
    assert {"gevent", "packaging"} <= declared_distributions()


def read_lock(name: str) -> dict[str, Version]:
    """The pinned versions of a lock file that apply on this machine."""
    pins: dict[str, Version] = {}
    for number, line in enumerate((ROOT / name).read_text("utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = LOCK_LINE.match(text)
        assert match, f"{name}:{number}: not a pin: {line!r}"
        marker = match.group(3)
        if marker is None or Requirement(f"x; {marker}").marker.evaluate():  # type: ignore[union-attr]
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", []), ("requirements-test.lock", ["test"])]
)
def test_the_locks_pin_every_requirement_inside_its_range(lock: str, extras: list[str]) -> None:
    pins = read_lock(lock)
    wanted = requirements() + [r for extra in extras for r in requirements(extra)]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} has no pin for {requirement}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement}"
        )


def test_the_deployment_lock_is_the_test_locks_run_time_part() -> None:
    """Deployments get exactly the versions the locked test run passed with."""
    serve, test = read_lock("requirements.lock"), read_lock("requirements-test.lock")
    assert {name: test.get(name) for name in serve} == serve
