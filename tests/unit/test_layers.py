"""The code's shape, checked: layers point down, nothing imports late, nothing loops.

Read from the source with ``ast`` (nothing is imported or run):

* no import inside a function or method anywhere in the shipped packages (a late
  import hides a dependency, usually a cycle);
* the ops tool's modules (``scripts``) import each other without a cycle;
* the verifier imports no other package of ours; the API only the verifier's
  assertion, identity and metrics exposition; the client none of ours; the ops
  tool may import the verifier (to check its config) and the client (the demo
  call), never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scripts import config

PACKAGES = ("scripts", "verifier", "api", "client")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (config.REPO / package).rglob("*.py"):
            parts = path.relative_to(config.REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(tree: ast.AST) -> set[str]:
    """Every module of ours that ``tree`` imports at any depth (``from a import b``
    counts as ``a.b`` when that is a module, else ``a``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in MODULES else node.module)
    return {name for name in out if name.split(".")[0] in PACKAGES}


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_inside_a_function(name):
    late = [
        f"{MODULES[name]}:{inner.lineno}"
        for node in ast.walk(_tree(name))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    ]
    assert not late, f"late imports: {late}"


def test_the_ops_tool_has_no_import_cycle():
    graph = {
        name: {dep for dep in _imports(_tree(name)) if dep.startswith("scripts")}
        for name in MODULES
        if name.startswith("scripts")
    }
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                pytest.fail(f"import cycle: {' -> '.join([*path, node, dep])}")
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("verifier", {"verifier"}),
        ("api", {"api", "verifier.assertion", "verifier.identity", "verifier.promexport"}),
        ("client", {"client"}),
    ],
)
def test_lower_layers_never_import_upper_ones(package, allowed):
    for name in MODULES:
        if name.split(".")[0] != package:
            continue
        for dep in _imports(_tree(name)):
            assert any(dep == a or dep.startswith(a + ".") for a in allowed), (
                f"{name} imports {dep}"
            )
