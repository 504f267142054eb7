"""The package's shape holds: no Qt in the core, layers import only downward, no import cycles."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import napari_unet

PACKAGE = Path(napari_unet.__file__).parent
# What only the viewer may import: the Qt bindings, napari's Qt parts, Qt widget toolkits, OpenGL.
QT_MODULES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy", "napari")
# Lower layers never import higher ones; modules of one layer may import each other.
LAYERS = [
    {"_gl_guard", "_lazy", "progress", "devices", "io", "labels", "windows", "recovery", "settings"},
    {"synth", "model", "checks"},
    {"inference"},
    {"training"},
    {"clicks"},
    {"finetune"},
    {"distributed"},
    {"_qt"},
    {"cli"},
    {"__init__"},  # napari_unet itself: the public API gathers from everywhere
]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name, read from the source tree."""
    found = {"napari_unet": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], "napari_unet."):
        path = PACKAGE.joinpath(*info.name.split(".")[1:])
        found[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (lazy imports too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in known:
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
    return out - {name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else "__init__"
    return next(i for i, members in enumerate(LAYERS) if top in members)


def test_every_module_has_a_layer():
    for name in modules():
        assert layer(name) is not None, name


@pytest.mark.slow
def test_the_core_imports_no_qt_in_a_fresh_interpreter():
    core = [m for m in modules() if not m.startswith("napari_unet._qt") and not m.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted({{m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}}})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(core) > 40  # the walk found the package
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_layers_import_only_downward():
    assert upward_imports(import_graph()) == []


def test_inference_never_imports_training():
    graph = import_graph()
    assert not [(a, b) for a, deps in graph.items() for b in deps
                if a.startswith("napari_unet.inference") and b.startswith("napari_unet.training")]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` closes, as the path around it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, deps in graph.items() for b in deps if layer(b) > layer(a)]


def test_the_import_graph_has_no_cycle():
    assert find_cycles(import_graph()) == []


def test_the_checks_catch_a_cycle_and_an_upward_import():
    graph = import_graph()
    assert "napari_unet.inference.predict" in graph["napari_unet.inference.segment"]  # the graph is read
    graph["napari_unet.inference.predict"] = graph["napari_unet.inference.predict"] | {"napari_unet.inference.segment"}
    cycles = [set(c) for c in find_cycles(graph)]
    assert cycles and all({"napari_unet.inference.predict", "napari_unet.inference.segment"} <= c for c in cycles)
    graph["napari_unet.model.files"] = {"napari_unet.training.engine"}
    assert ("napari_unet.model.files", "napari_unet.training.engine") in upward_imports(graph)


def test_qt_is_reached_only_through_qtpy():
    bindings = {"PyQt5", "PyQt6", "PySide2", "PySide6", "sip", "shiboken2", "shiboken6"}
    direct = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            roots = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            direct += [f"{name} imports {r}" for r in roots if r.split(".")[0] in bindings]
    assert not direct, direct
