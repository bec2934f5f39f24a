"""The import structure of the packages, read from their source (ast): no import circle anywhere in
``bench/`` or ``methods/`` (function-level imports included: an import inside a function hides a
circle from Python, not from this test), the report layer's stages import one way only, and no module
of the report layer imports another's private names.

The equivalent of import-linter's ``layers`` contract plus a whole-graph cycle check, without a new
dependency: the graph is built the way import-linter's grimp builds it (every ``import`` statement,
wherever it stands; a ``from package import name`` counts as importing the submodule when ``name`` is
one, else the package)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.paths import repo_root

PACKAGES = ("bench", "methods")
REPORTING = "bench.reporting"
# bottom to top; modules of one layer may not import each other (paper and figures are siblings)
REPORT_LAYERS = [("selection",), ("render",), ("tables",), ("claims",), ("paper", "figures", "attackers"), ("page", "doctables"), ("report",)]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the module the statement loads (a submodule where it names one, else the package)
    names: tuple[str, ...]  # the names a ``from`` import takes from it ((): a plain ``import``)
    line: int
    in_function: bool


def module_files(root: Path) -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _internal(name: str, files: dict[str, Path]) -> str | None:
    """The module of ``files`` that importing ``name`` loads (its nearest known parent), None outside."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, files: dict[str, Path]):
        self.module, self.files, self.depth, self.found = module, files, 0, []
        is_package = files[module].name == "__init__.py"
        self.package = module if is_package else module.rpartition(".")[0]

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def _add(self, target: str, names: tuple[str, ...], node) -> None:
        module = _internal(target, self.files)
        if module and module != self.module:
            self.found.append(Import(self.module, module, names, node.lineno, self.depth > 0))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, (), node)

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([base] if base else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in self.files:
                self._add(sub, (), node)  # `from package import submodule`
            else:
                self._add(base, (alias.name,), node)


def imports(root: Path) -> list[Import]:
    files = module_files(root)
    found = []
    for module, path in files.items():
        collector = _Collector(module, files)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found += collector.found
    return found


def cycles(edges: list[Import]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan), and
    modules that import themselves."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
        graph.setdefault(e.imported, set())
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe(edges: list[Import], component: list[str]) -> str:
    inside = [e for e in edges if e.importer in component and e.imported in component]
    return "; ".join(f"{e.importer}:{e.line} imports {e.imported}" + (" (in a function)" if e.in_function else "")
                     for e in inside)


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return imports(repo_root())


def test_the_graph_sees_the_imports_it_must_see(edges):
    """The checks below mean something only if the graph holds the known edges, function-level ones too."""
    pairs = {(e.importer, e.imported) for e in edges}
    assert ("bench.reporting.report", "bench.reporting.page") in pairs
    assert ("bench.reporting.claims", "bench.reporting.tables") in pairs
    assert ("methods.base", "bench.registry") in pairs
    assert any(e.in_function and e.importer == "bench.cli_run" and e.imported == "bench.reporting" for e in edges)


def test_no_import_circle_in_bench_or_methods(edges):
    found = cycles(edges)
    assert not found, "import circle(s): " + " | ".join(_describe(edges, c) for c in found)


def test_the_report_layer_imports_one_way(edges):
    layer = {m: i for i, group in enumerate(REPORT_LAYERS) for m in group}
    bad = []
    for e in edges:
        if not (e.importer.startswith(REPORTING + ".") and e.imported.startswith(REPORTING + ".")):
            continue
        a, b = e.importer.rpartition(".")[2], e.imported.rpartition(".")[2]
        assert a in layer and b in layer, f"{e.importer} or {e.imported} has no place in REPORT_LAYERS"
        if layer[b] >= layer[a]:
            bad.append(f"{e.importer}:{e.line} imports {e.imported} (same or higher layer)")
    assert not bad, "; ".join(bad)


def test_no_private_name_crosses_the_report_layers_modules(edges):
    bad = [f"{e.importer}:{e.line} imports {', '.join(n for n in e.names if n.startswith('_'))} from {e.imported}"
           for e in edges if e.importer.startswith(REPORTING) and e.imported.startswith(REPORTING)
           and any(n.startswith("_") for n in e.names)]
    assert not bad, "; ".join(bad)


def test_the_report_layer_hides_no_import_in_a_function(edges):
    """Internal modules are imported at the top of each report module, where the layering is visible
    (third-party ones, such as matplotlib, may still load lazily)."""
    bad = [f"{e.importer}:{e.line} imports {e.imported} inside a function" for e in edges
           if e.importer.startswith(REPORTING) and e.in_function]
    assert not bad, "; ".join(bad)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    """The checker itself: a circle closed only by an import inside a function, and a private name taken
    across modules, are both reported."""
    pkg = tmp_path / "bench"
    pkg.mkdir()
    (tmp_path / "methods").mkdir()
    (pkg / "__init__.py").write_text("")
    (tmp_path / "methods" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import _helper\n")
    (pkg / "b.py").write_text("def _helper():\n    from . import a\n    return a\n")
    edges = imports(tmp_path)
    assert cycles(edges) == [["bench.a", "bench.b"]]
    assert any(e.in_function for e in edges) and any(e.names == ("_helper",) for e in edges)
