"""Imports point down: pipeline/ -> adapters -> shared adapter helpers -> core -> schemas, never back up.

Read from every module's source (both top-level and function-level imports), so an arrow running up
fails here before it tangles anything.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
ADAPTERS = ("example_gen", "transform", "trainer", "evaluator", "tracking", "tflite_export", "pusher")
SHARED = ("artifacts", "beam_options", "dask_cluster", "evaluation_reader", "log_setup")


def _module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(REPOSITORY).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("components", "pipeline", "schemas")}


def _layer(module: str) -> tuple[int, str]:
    """(rank, group): a module may import only lower ranks, or its own group."""
    parts = module.split(".")
    if parts[0] == "schemas":
        return 0, "schemas"
    if parts[0] == "pipeline":
        return 4, "pipeline"
    if parts[:2] == ["components", "core"] or module == "components":
        return 1, "core"
    if len(parts) > 1 and parts[1] in SHARED:
        return 2, parts[1]
    if len(parts) > 1 and parts[1] in ADAPTERS:
        return 3, parts[1]
    raise AssertionError(f"{module}: in no layer; add it to this test")


MODULES = sorted(path for folder in ("components", "pipeline") for path in (REPOSITORY / folder).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _module_name(path))
def test_imports_point_down(path):
    rank, group = _layer(_module_name(path))
    upward = []
    for imported in _imports(path):
        if imported in ("components", "components.core"):
            continue
        try:
            imported_rank, imported_group = _layer(imported)
        except AssertionError:
            continue  # `from components import artifacts` also yields "components.artifacts", checked on its own
        if imported_group != group and imported_rank >= rank:
            upward.append(imported)
    assert not upward, f"{_module_name(path)} imports {sorted(upward)} (same or higher layer)"


def test_every_module_has_a_docstring():
    missing = [_module_name(path) for path in MODULES + sorted((REPOSITORY / "schemas").rglob("*.py"))
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert not missing
