"""Architecture boundaries, checked on the source (AST), not by importing it.

* ``science/`` is pure: no module it reaches (transitively, through any import statement,
  including imports inside functions) is Dagster, ``settings``, ``resources``,
  ``partitions`` or the Dagster wiring, and none reads the environment.
* Environment variables are read in ``settings.py`` only.
* No ``assert`` statements in the package (``python -O`` strips them).
* The science import graph has no cycle (e.g. models <-> training).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from stronglens_assets.settings import PROJECT_ROOT

PACKAGE = "stronglens_assets"
PACKAGE_DIR = PROJECT_ROOT / PACKAGE

#: Modules science must never reach (prefix match on dotted names).
FORBIDDEN_FROM_SCIENCE: tuple[str, ...] = (
    "dagster",
    "dagster_aws",
    "dagster_k8s",
    "dagster_postgres",
    "dagster_webserver",
    f"{PACKAGE}.settings",
    f"{PACKAGE}.resources",
    f"{PACKAGE}.partitions",
    f"{PACKAGE}.assets",
    f"{PACKAGE}.automation",
    f"{PACKAGE}.definitions",
    f"{PACKAGE}.project",
    f"{PACKAGE}.runner",
    f"{PACKAGE}.cli",
    f"{PACKAGE}.sync",
)
ENV_READERS_ALLOWED: frozenset[str] = frozenset({f"{PACKAGE}.settings"})


def module_name(path: Path, root: Path = PROJECT_ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Dotted names imported anywhere in ``tree`` (relative imports resolved); for
    ``from a import b`` both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def environment_reads(tree: ast.AST) -> list[int]:
    """Line numbers that read the environment: ``os.environ``, ``os.getenv``, or the names
    ``environ`` / ``getenv`` imported from ``os``."""
    lines = []
    from_os = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            from_os.update(
                a.asname or a.name for a in node.names if a.name in ("environ", "getenv")
            )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "environb", "getenvb")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (isinstance(node, ast.Name) and node.id in from_os):
            lines.append(node.lineno)
    return lines


class SourceTree:
    """The package's modules, parsed once."""

    def __init__(self, root: Path = PROJECT_ROOT, package: str = PACKAGE) -> None:
        self.root = root
        self.trees: dict[str, tuple[ast.AST, bool, Path]] = {}
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            tree = ast.parse(path.read_text(), filename=str(path))
            self.trees[name] = (tree, path.name == "__init__.py", path)

    def imports(self, name: str) -> set[str]:
        tree, is_package, _ = self.trees[name]
        return imported_modules(tree, name, is_package)

    def reachable(self, start: str) -> dict[str, list[str]]:
        """Every module reachable from ``start`` -> the import chain that reaches it; package
        modules are followed, third-party modules are leaves."""
        chains = {start: [start]}
        todo = [start]
        while todo:
            current = todo.pop()
            for imported in sorted(self.imports(current)):
                for candidate in self._own_modules(imported):
                    if candidate not in chains:
                        chains[candidate] = [*chains[current], candidate]
                        todo.append(candidate)
                if imported not in chains and not imported.startswith(PACKAGE):
                    chains[imported] = [*chains[current], imported]
        return chains

    def _own_modules(self, dotted: str) -> Iterator[str]:
        """``dotted`` and its parent packages that are modules of this tree (importing
        ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a/b/c``)."""
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in self.trees:
                yield candidate


def boundary_violations(source: SourceTree) -> list[str]:
    problems = []
    for name in source.trees:
        if not name.startswith(f"{PACKAGE}.science"):
            continue
        for reached, chain in source.reachable(name).items():
            if any(reached == f or reached.startswith(f + ".") for f in FORBIDDEN_FROM_SCIENCE):
                problems.append(f"{name} imports {reached} via {' -> '.join(chain)}")
            if reached in source.trees and reached not in ENV_READERS_ALLOWED:
                lines = environment_reads(source.trees[reached][0])
                if lines:
                    problems.append(
                        f"{name} reaches {reached}, which reads the environment at line(s) "
                        f"{lines} (via {' -> '.join(chain)})"
                    )
    return sorted(set(problems))


def environment_readers(source: SourceTree) -> list[str]:
    return [
        f"{name}:{lines}"
        for name, (tree, _, _) in source.trees.items()
        if name not in ENV_READERS_ALLOWED and (lines := environment_reads(tree))
    ]


def assert_statements(source: SourceTree) -> list[str]:
    return [
        f"{path.relative_to(source.root)}:{node.lineno}"
        for tree, _, path in source.trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
    ]


def science_import_cycles(source: SourceTree) -> list[list[str]]:
    """Cycles among science modules (module-level imports only: the ones that bind at
    import time)."""
    science = {n for n in source.trees if n.startswith(f"{PACKAGE}.science")}
    graph: dict[str, set[str]] = {}
    for name in science:
        tree, is_package, _ = source.trees[name]
        top = ast.Module(body=[n for n in tree.body], type_ignores=[])  # type: ignore[attr-defined]
        graph[name] = {
            m
            for imported in imported_modules(top, name, is_package)
            for m in source._own_modules(imported)
            if m in science and m != name and not source.trees[m][1]
        }
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "active"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "active":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


@pytest.fixture(scope="module")
def source() -> SourceTree:
    return SourceTree()


def test_science_reaches_no_dagster_settings_resources_or_environment(source) -> None:
    assert boundary_violations(source) == []


def test_only_settings_reads_the_environment(source) -> None:
    assert environment_readers(source) == []


def test_no_assert_statements_in_the_package(source) -> None:
    assert assert_statements(source) == []


def test_science_has_no_import_cycle(source) -> None:
    assert science_import_cycles(source) == []


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checks_catch_violations(tmp_path: Path) -> None:
    """The checks fail on a tree that breaks each rule (so the tests above can fail)."""
    for package in (PACKAGE, f"{PACKAGE}/science", f"{PACKAGE}/science/stats"):
        _write(tmp_path, f"{package}/__init__.py", "")
    _write(tmp_path, f"{PACKAGE}/settings.py", "import os\nHOME = os.environ.get('HOME')\n")
    _write(tmp_path, f"{PACKAGE}/helpers.py", "from os import getenv\nX = getenv('X')\n")
    _write(tmp_path, f"{PACKAGE}/science/stats/a.py", "from . import b\n")
    _write(tmp_path, f"{PACKAGE}/science/stats/b.py", "from .a import x\nassert True\n")
    _write(
        tmp_path,
        f"{PACKAGE}/science/stats/c.py",
        "def f():\n    import dagster\n    from ...settings import HOME\n"
        "    from stronglens_assets import helpers\n",
    )
    tree = SourceTree(tmp_path)
    problems = "\n".join(boundary_violations(tree))
    assert "science.stats.c imports dagster" in problems
    assert "imports stronglens_assets.settings" in problems
    assert "reaches stronglens_assets.helpers, which reads the environment" in problems
    assert environment_readers(tree) == ["stronglens_assets.helpers:[2]"]
    assert assert_statements(tree) == [f"{PACKAGE}/science/stats/b.py:2"]
    assert science_import_cycles(tree) == [
        ["stronglens_assets.science.stats.a", "stronglens_assets.science.stats.b",
         "stronglens_assets.science.stats.a"]
    ]  # fmt: skip


def test_every_error_class_derives_from_the_root() -> None:
    """One exception root: every exception class the package defines is a StronglensError
    (each keeps its built-in base, so callers' ``except ValueError`` still work)."""
    import importlib
    import inspect
    import pkgutil

    import stronglens_assets
    from stronglens_assets.errors import StronglensError

    outside = []
    for info in pkgutil.walk_packages(stronglens_assets.__path__, f"{PACKAGE}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not issubclass(value, StronglensError)
            ):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []
