"""The layer rules, checked on the source: every module under vouchers/ is parsed with ``ast``.

- views, forms, tasks and admin never import ``vouchers.providers`` (they see portal refusals);
- providers never import ``vouchers.models`` or ``vouchers.services`` (they know only HTTP);
- services never import ``vouchers.tasks`` or ``vouchers.views``;
- selectors (reads) and values (parsing, formatting) never import services;
- no import cycle between vouchers modules.

Imports inside functions count too: a lazy import hides a dependency, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vouchers"

#: (importing layer, imported layer) pairs that are refused.
FORBIDDEN = {
    ("views", "providers"),
    ("forms", "providers"),
    ("tasks", "providers"),
    ("admin", "providers"),
    ("providers", "models"),
    ("providers", "services"),
    ("services", "tasks"),
    ("services", "views"),
    ("selectors", "services"),
    ("values", "services"),
}

#: Rules or cycles this code is allowed to break: none. An entry here must name a real violation
#: (a test below fails on a stale one) and say why it cannot be fixed now.
KNOWN_VIOLATIONS: set = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package), migrations aside."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if "migrations" in parts:
            continue
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _targets(module: str, is_package: bool, node: ast.AST, modules) -> list[str]:
    """The vouchers modules one import statement loads (``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, node.module] if node.module else anchor)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name].update(t for t in _targets(name, is_package, node, modules) if t in modules)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rule_violations(graph) -> set[tuple[str, str]]:
    return {
        (importer, imported)
        for importer, imports in graph.items()
        for imported in imports
        if (_layer(importer), _layer(imported)) in FORBIDDEN
    }


def cycles(graph) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def test_the_graph_sees_relative_lazy_and_submodule_imports():
    graph = import_graph()
    assert "vouchers.security.crypto" in graph["vouchers.security.fields"]  # from . import crypto
    assert "vouchers.models" in graph["vouchers.services.encryption"]  # from ..models import Campaign
    assert "vouchers.providers.lina" in graph["vouchers.models.campaigns"]  # inside a function


def test_layer_rules_hold():
    assert rule_violations(import_graph()) - KNOWN_VIOLATIONS == set()


def test_no_import_cycles():
    assert cycles(import_graph()) - KNOWN_VIOLATIONS == set()


def test_known_violations_are_still_real():
    """An entry that no longer happens must go, so the list only ever shrinks to empty."""
    graph = import_graph()
    assert KNOWN_VIOLATIONS - rule_violations(graph) - cycles(graph) == set()


def test_the_checks_catch_what_they_are_for():
    graph = {
        "vouchers.views.x": {"vouchers.providers.errors"},
        "vouchers.providers.errors": {"vouchers.models"},
        "vouchers.models": {"vouchers.views.x"},
        "vouchers.selectors.y": {"vouchers.services.z"},
        "vouchers.services.z": set(),
    }
    assert rule_violations(graph) == {
        ("vouchers.views.x", "vouchers.providers.errors"),
        ("vouchers.providers.errors", "vouchers.models"),
        ("vouchers.selectors.y", "vouchers.services.z"),
    }
    assert cycles(graph) == {frozenset({"vouchers.views.x", "vouchers.providers.errors", "vouchers.models"})}
