"""Architecture rules checked on the sources: no import cycle, no oversized module, core never imports compat."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("squirrel_graph", "optimizers")
# squirrel-core's import paths: thin modules that only re-export; core code never imports them
COMPAT = (
    "squirrel_graph.iterstream",
    "squirrel_graph.driver",
    "squirrel_graph.store",
    "squirrel_graph.serialization",
    "squirrel_graph.framework",
    "squirrel_graph.catalog",
    "squirrel_graph.fsspec",
    "squirrel_graph.zarr",
    "squirrel_graph.artifact_manager",
)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of ours that ``name`` imports anywhere (functions included, TYPE_CHECKING blocks excluded).

    ``from pkg import x`` imports ``pkg.x`` if that is a module, else ``pkg`` (its ``__init__``); the implicit
    import of parent packages does not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif base in modules:
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def import_graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        for target in _imports(name, path, modules):
            g.add_edge(name, target)
    return g


def test_the_import_graph_has_no_cycle():
    g = import_graph()
    cycles = list(nx.simple_cycles(g))
    shortest = sorted(cycles, key=len)[:5]
    assert not cycles, f"{len(cycles)} import cycle(s), e.g. " + "; ".join(" -> ".join(c + c[:1]) for c in shortest)


def test_the_cycle_finder_finds_a_cycle_inside_a_function(tmp_path):
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from demo.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo import a\n")
    modules = {"demo": pkg / "__init__.py", "demo.a": pkg / "a.py", "demo.b": pkg / "b.py", "demo.c": pkg / "c.py"}
    assert _imports("demo.a", modules["demo.a"], modules) == {"demo.b"}
    assert _imports("demo.b", modules["demo.b"], modules) == {"demo.a"}
    assert _imports("demo.c", modules["demo.c"], modules) == set()


def _compat(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in COMPAT)


def test_core_modules_never_import_the_compatibility_modules():
    g = import_graph()
    bad = sorted((u, v) for u, v in g.edges if _compat(v) and not _compat(u) and u != "squirrel_graph")
    assert not bad, f"core modules importing compatibility modules: {bad}"


def test_no_module_imports_a_private_name_of_another_module():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                bad += [
                    f"{name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert not bad, f"private names imported across modules: {bad}"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_source_file_is_over_550_lines(pkg):
    long = {
        str(p.relative_to(ROOT)): n for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text().splitlines())) > 550
    }
    assert not long, f"split these modules: {long}"


def test_compatibility_modules_only_re_export():
    defining = []
    for name, path in _modules().items():
        if not _compat(name):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defining.append(f"{name}.{node.name}")
    assert not defining, f"compatibility modules must only re-export; these define code: {defining}"
