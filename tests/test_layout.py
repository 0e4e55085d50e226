"""The house rules of the layout, checked on the source: small modules, no import cycles (an
import inside a function counts: it is a cycle all the same, only deferred), and the rooms that
must not know each other: channels/ nothing of simlab, actors/ nothing of SimPy, sim/ no
Scenario and no registry."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simlab", "channels")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in its body."""
    found = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def _package_edge(a: str, b: str) -> bool:
    """A package's __init__ importing its own submodules is no cycle of ideas."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles():
    real = []
    for comp in _cycles():
        edges = [(a, b) for a in comp for b in GRAPH[a] if b in comp and not _package_edge(a, b)]
        if edges:
            real.append(comp)
    assert not real, f"import cycles: {real}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 400, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def test_rooms_that_must_not_know_each_other():
    for name, deps in GRAPH.items():
        if name.startswith("channels"):
            assert not [d for d in deps if d.startswith("simlab")], f"{name} imports simlab: {deps}"
        if name == "simlab.sim" or name.startswith("simlab.sim."):
            bad = [d for d in deps if d in ("simlab.scenario", "simlab.registry", "simlab.build")]
            assert not bad, f"{name} knows the scenario or the registry: {bad}"
        if name.startswith("simlab.actors"):
            assert not [d for d in deps if d.startswith("simlab.sim")], f"{name} imports the simulator"
            assert "import simpy" not in MODULES[name].read_text(), f"{name} imports SimPy"
