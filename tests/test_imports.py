"""No import cycles among the gateway's modules (``app``, ``tasks``, ``workers``, ``celeryconfig``).

The graph is read from the source with ``ast``. Imports inside functions and under
``TYPE_CHECKING`` count too: deferring an import hides a cycle from Python, not from a reader,
and two modules that need each other are one module in two files.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "tasks", "workers")



def modules() -> dict[str, Path]:
    """Every module of the gateway by dotted name (a package by its ``__init__``)."""
    found = {"celeryconfig": ROOT / "celeryconfig.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module and the gateway modules it imports, anywhere in its body."""
    known = modules()

    def resolve(name: str) -> str | None:
        # ``from app.x import y`` imports module app.x.y if there is one, else names in app.x.
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                imported.update(resolve(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = {m for m in imported if m and m != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_of_every_form():
    graph = import_graph()
    assert "celeryconfig" in graph["tasks.base"]  # import x
    assert "app.keys" in graph["tasks.publish"]  # from package import module
    assert "app.conversations.responders.rules" in graph["app.conversations.responders.factory"]
    assert "workers.celery_app" in graph["workers"]  # a package's __init__


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    described = [
        " -> ".join(component)
        + "\n  "
        + "\n  ".join(f"{m} imports {sorted(graph[m] & set(component))}" for m in component)
        for component in cycles(graph)
    ]
    assert not described, "import cycles:\n" + "\n".join(described)


def test_the_graph_client_package_imports_neither_redis_nor_the_credential_store():
    for module, path in modules().items():
        if module == "app.whatsapp" or module.startswith("app.whatsapp."):
            tree = ast.parse(path.read_text(), str(path))
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert not {"redis", "app.db", "app.credentials"} & names, module
