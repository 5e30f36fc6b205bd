"""Code versions: each asset's ``code_version`` is the first 16 hex digits of the SHA-256 of
its function's source plus the source of every ``stronglens_assets`` module the function names
directly, plus every ``science``/``mock_survey`` module those import, transitively (see the
package docstring). Source text only: stable across processes and machines."""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _referenced_project_modules(fn: Any) -> list[str]:
    """Names of ``stronglens_assets`` modules that ``fn`` refers to directly (sorted)."""
    modules: set[str] = set()
    namespace = dict(getattr(fn, "__globals__", {}))
    closure = getattr(fn, "__closure__", None) or ()
    for name, cell in zip(fn.__code__.co_freevars, closure, strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for name in set(_code_names(fn.__code__)):
        value = namespace.get(name)
        if isinstance(value, types.ModuleType):
            module_name = value.__name__
        else:
            module_name = getattr(value, "__module__", None) or ""
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
        if module_name.startswith("stronglens_assets."):
            modules.add(module_name)
    return sorted(modules)


#: Packages whose modules count transitively in a code version: the computation itself.
_SCIENCE_PACKAGES = ("stronglens_assets.science", "stronglens_assets.mock_survey")


@functools.cache
def _imported_science_modules(module_name: str) -> frozenset[str]:
    """``science``/``mock_survey`` modules that the module's source imports (anywhere in it)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(_module_source(module_name))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` may name submodules: keep those that are modules
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(_SCIENCE_PACKAGES) and _is_module(name):
                found.add(name)
    return frozenset(found)


@functools.cache
def _module_source(module_name: str) -> str:
    """The text of the module's source file ("" for a namespace package).

    Cached per process: a code location builds its definitions once, from the files it
    imported."""
    import importlib
    from pathlib import Path

    path = getattr(importlib.import_module(module_name), "__file__", None)
    return Path(path).read_text() if path else ""


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module (not, e.g., a function imported from one)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: ``name`` is an attribute
        return False


def code_modules(assets_def: dg.AssetsDefinition) -> list[str]:
    """The ``stronglens_assets`` modules whose source enters the asset's code version (sorted):
    those its function names directly, plus the science modules they import, transitively."""
    fn = assets_def.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    pending = list(_referenced_project_modules(fn))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(sorted(_imported_science_modules(name) - seen))
    return sorted(seen)


#: The model-config module: an asset using it reads ``configs/models/*.yaml``.
_MODEL_CONFIG_MODULE = "stronglens_assets.science.learning.model_config"


def _string_literals(source: str) -> frozenset[str]:
    """Every string constant in ``source``."""
    import ast

    return frozenset(
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


@functools.cache
def _module_literals(module_name: str) -> frozenset[str]:
    """Every string constant in the module's source (cached per process, like the source)."""
    return _string_literals(_module_source(module_name))


@functools.cache
def _wiring_modules_of(own: str) -> tuple[str, ...]:
    import ast

    found = [own]
    for node in ast.walk(ast.parse(_module_source(own))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("stronglens_assets.assets") and _is_module(node.module):
                found.append(node.module)
    return tuple(sorted(set(found)))


def _wiring_modules(fn: Any) -> list[str]:
    """The asset function's own module and the ``stronglens_assets.assets`` modules it imports
    (the wiring that loads configs at definition time, e.g. ``assets.shared``)."""
    own = getattr(fn, "__module__", "") or ""
    if not own.startswith("stronglens_assets."):
        return []
    return list(_wiring_modules_of(own))


def config_files(
    assets_def: dg.AssetsDefinition, config_dir: Path, footprint_file: Path | None = None
) -> list[Path]:
    """The config files whose content enters the asset's code version (sorted): each YAML file
    of ``config_dir`` whose file name appears as a string literal in the asset's source, its
    wiring module (and the ``assets`` modules that imports) or the modules of
    :func:`code_modules` (``"d06.yaml"`` in ``science/experiments.py``); every
    ``models/*.yaml`` when the asset reads model configs; the footprint file (default
    ``footprint.yaml``) when the asset's function uses the footprint."""
    fn = assets_def.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    modules = code_modules(assets_def)
    fn_source = textwrap.dedent(inspect.getsource(fn))
    literals = set(_string_literals(fn_source))
    for module_name in {*modules, *_wiring_modules(fn)}:
        literals |= _module_literals(module_name)
    files = [p for p in sorted(config_dir.glob("*.y*ml")) if p.name in literals]
    if _MODEL_CONFIG_MODULE in modules:
        files += sorted((config_dir / "models").glob("*.y*ml"))
    if "footprint" in fn_source:
        footprint = footprint_file or config_dir / "footprint.yaml"
        if footprint.is_file() and footprint not in files:
            files.append(footprint)
    return files


def code_version_of(
    assets_def: dg.AssetsDefinition,
    config_dir: Path | None = None,
    profile: str | None = None,
    footprint_file: Path | None = None,
) -> str:
    """Deterministic code version of an asset: see the module docstring. With ``config_dir``,
    the bytes of the asset's :func:`config_files` and the size ``profile`` enter it too, so an
    edited config makes the assets reading it stale (and re-run) and nothing else."""

    fn = assets_def.op.compute_fn
    fn = getattr(fn, "decorated_fn", fn)
    digest = hashlib.sha256()
    digest.update(inspect.getsource(fn).encode())
    for module_name in code_modules(assets_def):
        digest.update(module_name.encode())
        digest.update(_module_source(module_name).encode())
    if config_dir is not None:
        files = config_files(assets_def, config_dir, footprint_file)
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        if files and profile:
            digest.update(f"profile={profile}".encode())
    return digest.hexdigest()[:16]
