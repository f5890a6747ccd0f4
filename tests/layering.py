"""Static import graph of the tree: every import (module level, inside functions, importlib strings), its layer, cycles.

Used by tests/unit/test_layers.py on the real tree and on small trees made inside the tests to show the rules bite.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# The layers, lowest first, and which top-level packages each holds. An import may only point to the same layer or
# a layer listed in ALLOWED for it. handlers/ is deployed alone (its folder is the zip root), so it imports nothing of
# ours, not even common.
LAYERS: Mapping[str, tuple[str, ...]] = {
    "common": ("common",),
    "handlers": ("thumbnailer", "notifier", "seed"),
    "fixtures": ("fixtures",),
    "infra": ("infra",),
    "harness": ("harness",),
    "benchmarks": ("benchmarks",),
    "plugin": ("local_executor",),
}
ALLOWED: Mapping[str, frozenset[str]] = {
    "common": frozenset({"common"}),
    "handlers": frozenset({"handlers"}),
    "fixtures": frozenset({"common", "fixtures"}),
    "infra": frozenset({"common", "handlers", "infra"}),
    "harness": frozenset({"common", "handlers", "fixtures", "infra", "harness", "plugin"}),
    "benchmarks": frozenset({"common", "handlers", "fixtures", "infra", "harness", "plugin", "benchmarks"}),
    # the executor plugin runs inside the emulator's venv (LocalStack's interpreter): nothing of ours is there
    "plugin": frozenset({"plugin"}),
}
# Where the source roots are: handlers' packages live under handlers/, the plugin under harness/executor, the rest at
# the top.
SOURCE_ROOTS = (".", "handlers", "harness/executor")
SKIP_PARTS = frozenset({"node_modules", "cdk.out", "__pycache__", "tests", ".venv", ".venv-emulator", "generated"})


@dataclass(frozen=True)
class Import:
    """One import found in a module: who imports what, on which line, and how (static, function-level, importlib)."""

    importer: str
    imported: str
    path: Path
    line: int
    how: str


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    for layer, packages in LAYERS.items():
        if top in packages:
            return layer
    return None


def discover(root: Path) -> dict[str, Path]:
    """Module name -> file for every module of ours under root (packages of LAYERS, in their source roots)."""
    modules: dict[str, Path] = {}
    for source in SOURCE_ROOTS:
        base = (root / source).resolve()
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if SKIP_PARTS & set(rel.parts) or any(p.startswith(".") for p in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if not parts or layer_of(parts[0]) is None:
                continue
            if source == "." and parts[0] in LAYERS["handlers"] + LAYERS["plugin"]:
                continue  # handlers' packages are only importable from handlers/, the plugin from harness/executor
            if source == "." and parts[:2] == ["harness", "executor"]:
                continue  # harness/executor is the plugin's project folder, not a harness subpackage
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The most specific module of ours that `name` denotes (a.b.c where c is a function -> a.b)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _is_import_call(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr in ("import_module", "find_spec")) or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__", "find_spec")
    )


def _string_imports(node: ast.Call) -> str | None:
    if (
        _is_import_call(node)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Import]:
    """Every import of ours in one module, wherever it stands (module level, functions, TYPE_CHECKING, importlib).

    `from a import b` counts as an import of a.b when that is a module, else of a; `import a.b` counts a.b. The
    implicit import of parent packages is not counted (a package's __init__ importing its own submodules is fine).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    dynamic = any(
        isinstance(n, ast.Call) and _is_import_call(n) and not (n.args and isinstance(n.args[0], ast.Constant))
        for n in ast.walk(tree)
    )
    for node in ast.walk(tree):
        names: list[tuple[str, str]] = []
        if isinstance(node, ast.Import):
            names = [(alias.name, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base, "from") for a in node.names]
        elif isinstance(node, ast.Call):
            name = _string_imports(node)
            if name:
                names = [(name, "importlib")]
        elif dynamic and isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            # importlib.import_module(name) with a computed name: every module name spelled in this file counts
            names = [(node.value, "importlib")]
        seen: set[str] = set()
        for name, how in names:
            resolved = _resolve(name, modules)
            if resolved is None or resolved == module or resolved in seen:
                continue
            seen.add(resolved)
            yield Import(module, resolved, path, getattr(node, "lineno", 0), how)


def graph(root: Path) -> tuple[dict[str, Path], list[Import]]:
    modules = discover(root)
    edges = [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]
    return modules, edges


def layer_violations(edges: Iterable[Import]) -> list[str]:
    bad = []
    for imp in edges:
        src, dst = layer_of(imp.importer), layer_of(imp.imported)
        if src is None or dst is None:
            continue
        if dst not in ALLOWED[src]:
            bad.append(f"{imp.path}:{imp.line}: {imp.importer} ({src}) imports {imp.imported} ({dst}) [{imp.how}]")
    return bad


def cycles(modules: Iterable[str], edges: Iterable[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative): each one is an import cycle."""
    adjacency: dict[str, set[str]] = {m: set() for m in modules}
    for imp in edges:
        adjacency.setdefault(imp.importer, set()).add(imp.imported)
        adjacency.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(adjacency):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(adjacency[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found
