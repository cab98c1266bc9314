"""The layer rules of docs/architecture.md, read from the import statements of vouchers/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "vouchers"

#: (layer of the importing module, layer it must not import)
FORBIDDEN = [
    ("views", "providers"),
    ("forms", "providers"),
    ("tasks", "providers"),
    ("providers", "models"),
    ("providers", "services"),
    ("services", "tasks"),
    ("services", "views"),
    ("selectors", "services"),
    ("values", "services"),
]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every vouchers module ``path`` imports, at any depth of the file (lazy imports count too)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("vouchers")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("vouchers"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


SOURCES = {_module(path): _imports(path) for path in ROOT.rglob("*.py") if "migrations" not in path.parts}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=[f"{a}->{b}" for a, b in FORBIDDEN])
def test_a_layer_never_imports_what_it_must_not(importer, imported):
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in SOURCES.items()
        if _layer(module) == importer
        for target in targets
        if _layer(target) == imported
    )
    assert offenders == []


def test_no_import_cycle_between_modules():
    """A cycle is what forces lazy imports and makes layers leak; none between vouchers modules."""
    modules = set(SOURCES)
    graph = {
        module: {t for t in targets if t in modules and t != module} for module, targets in SOURCES.items()
    }
    # A package's __init__ importing its own submodules (``tasks/__init__``) is not a cycle.
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
