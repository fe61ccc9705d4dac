"""Dependencies run one way (docs/architecture.md): every ``ssmar`` import, read from the source with
``ast`` (module level, inside functions and under TYPE_CHECKING alike), goes to the importer's own
layer or one below it, and the packages import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ssmar"

# Lowest first; a module may import its own layer and the ones before it (docs/architecture.md).
LAYERS = ("errors", "runtime", "config", "data", "video", "pose", "models", "aplt", "algorithms", "engine",
          "bench", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The layer a module belongs to: its first name below ``ssmar`` ("" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def ssmar_imports(source: str, package: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """(line, imported module) for every import of an ``ssmar`` module in ``source``; relative imports
    resolve against ``package`` (the dotted package the file sits in)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "ssmar"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            if base.split(".")[0] == "ssmar":  # "from ssmar.x import y": y may be a module; its layer is x's
                found.append((node.lineno, base))
    return sorted(found)


def file_imports(path: Path) -> list[tuple[int, str]]:
    package = tuple(module_name(path).split("."))
    return ssmar_imports(path.read_text(), package if path.name == "__init__.py" else package[:-1])


def import_graph() -> dict[str, list[tuple[str, int, str]]]:
    """Importing layer -> [(importing file, line, imported module)] over every module of the package."""
    graph: dict[str, list[tuple[str, int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit(module_name(path))
        for line, target in file_imports(path):
            graph.setdefault(source, []).append((str(path.relative_to(PACKAGE.parent)), line, target))
    return graph


def rank(layer: str) -> int:
    return -1 if layer == "" else LAYERS.index(layer)


def test_every_package_and_top_level_module_has_a_layer() -> None:
    units = {unit(module_name(path)) for path in PACKAGE.rglob("*.py")} - {""}
    assert units <= set(LAYERS), f"place {sorted(units - set(LAYERS))} in LAYERS and docs/architecture.md"


def test_no_layer_imports_a_higher_one() -> None:
    upward = [f"{where}:{line} imports {target} ({source} -> {unit(target)})"
              for source, imports in import_graph().items() for where, line, target in imports
              if rank(unit(target)) > rank(source)]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_the_package_root_and_the_runtime_leaf_import_nothing_above_errors() -> None:
    graph = import_graph()
    for layer in ("", "errors", "runtime"):
        above = [f"{where}:{line} imports {target}" for where, line, target in graph.get(layer, [])
                 if unit(target) not in ("errors", layer)]
        assert not above, f"{layer or 'ssmar/__init__'} must stay a leaf:\n" + "\n".join(above)


def test_packages_import_each_other_without_a_cycle() -> None:
    edges = {source: {unit(target) for _, _, target in imports} - {source}
             for source, imports in import_graph().items()}
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_checker_sees_lazy_relative_and_type_checking_imports() -> None:
    assert any(target == "ssmar.runtime.distributed" for _, target in file_imports(PACKAGE / "aplt" / "losses.py"))
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ssmar.cli.main import main\n"
              "def f():\n    import ssmar.bench.runner\n    from ..engine import trainer\n")
    found = [target for _, target in ssmar_imports(source, ("ssmar", "aplt"))]
    assert found == ["ssmar.cli.main", "ssmar.bench.runner", "ssmar.engine"]
    assert rank(unit("ssmar.engine")) > rank("aplt")  # so that file would fail the layer test
