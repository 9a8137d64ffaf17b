"""The import graph of hepnn: no cycles (module- or function-level imports), layers respected,
no private names imported across modules."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "hepnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(f): f for f in (SRC / PACKAGE).rglob("*.py")}


@cache
def imports_of(name: str) -> list[tuple[str, list[str]]]:
    """(imported hepnn module, names taken from it) for every import statement anywhere in ``name``."""
    path = MODULES[name]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith(PACKAGE)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            if not base.startswith(PACKAGE):
                continue
            for alias in node.names:  # `from pkg import submodule` depends on the submodule itself
                sub = f"{base}.{alias.name}"
                out.append((sub, []) if sub in MODULES else (base, [alias.name]))
    return out


def graph() -> dict[str, set[str]]:
    """module -> the hepnn modules it imports (a fresh dict: tests may add edges)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _ in imports_of(m):
            while target and target not in MODULES:  # hepnn.data.io.read_jets -> hepnn.data.io
                target = target.rpartition(".")[0]
            if target and target not in (m, PACKAGE):
                edges[m].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    edges = graph()
    edges["hepnn.runs"].add("hepnn.train.fit")  # train.fit imports runs: this closes a circle
    assert any({"hepnn.runs", "hepnn.train.fit"} <= set(c) for c in cycles(edges))


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_run_assembly_sits_below_what_opens_runs():
    """hepnn.runs reaches no command-level module: training, evaluation, tuning, compression, sampling."""
    above = {"hepnn.train.fit", "hepnn.train.engine", "hepnn.evaluate.run", "hepnn.evaluate.scores",
             "hepnn.tune.study", "hepnn.compress.prune", "hepnn.compress.quantize", "hepnn.compress.distill",
             "hepnn.compress.rundir", "hepnn.compress.export", "hepnn.sample", "hepnn.cli", "hepnn.demo"}
    assert not reachable("hepnn.runs", graph()) & above


def test_no_private_names_across_modules():
    leaks = [f"{m} imports {name} from {target}" for m in MODULES for target, names in imports_of(m)
             for name in names if name.startswith("_") and not name.startswith("__")]
    assert leaks == []
