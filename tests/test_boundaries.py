"""The architecture, held by reading the imports: typer and rich only in the command line, chromadb only in the
store, llama_cpp only in the in-process generator, httpx only in the LLM server client, pyarrow only in the
snapshot, pyspark and pandas only in the Spark engine, and no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from .helpers import ROOT

PACKAGE = ROOT / "logo_cli"
ALLOWED = {  # third-party import -> the modules that may import it
    "typer": ("logo_cli.cli",),
    "rich": ("logo_cli.cli",),
    "click": ("logo_cli.cli",),
    "chromadb": ("logo_cli.local_memory.store",),
    "llama_cpp": ("logo_cli.llm.gguf", "logo_cli.llm.llama"),
    "httpx": ("logo_cli.llm.remote",),
    "fastapi": ("logo_cli.server.app",),
    "starlette": ("logo_cli.server.app",),
    "uvicorn": ("logo_cli.server.app",),
    "pyspark": ("logo_cli.global_memory.engines.spark",),
    "pyarrow": ("logo_cli.global_memory.snapshot",),
    "pandas": ("logo_cli.global_memory.engines.spark",),
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x` names a module
                found.append(
                    (f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target, id(node) in top)
                )
    return found


MODULES = modules()


def test_heavy_and_ui_libraries_stay_in_their_modules() -> None:
    wrong = []
    for name, path in MODULES.items():
        for target, _ in imports(name, path):
            root = target.split(".")[0]
            if root in ALLOWED and not any(name == m or name.startswith(m + ".") for m in ALLOWED[root]):
                wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_no_import_cycles() -> None:
    graph = {
        name: {t for t, _ in imports(name, path) if t in MODULES and t != name and not name.startswith(t + ".")}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    assert not cycles, cycles


def test_the_library_never_imports_the_command_line() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if not name.startswith("logo_cli.cli") and name != "logo_cli.__main__"  # the entry point runs the CLI
        for target, _ in imports(name, path)
        if target.startswith("logo_cli.cli")
    ]
    assert not wrong, wrong


def test_the_checker_sees_imports() -> None:  # a checker that finds nothing would pass everything
    found = {t for t, _ in imports("logo_cli.ask", MODULES["logo_cli.ask"])}
    assert {"logo_cli.answers", "logo_cli.mediator", "numpy"} <= found
    cli = {t for t, _ in imports("logo_cli.cli.ask", MODULES["logo_cli.cli.ask"])}
    assert "typer" in cli and "logo_cli.ask" in cli
