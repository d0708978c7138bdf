"""The package's shape holds: the domain (engine, reflection, chat, models, store) knows nothing
of Textual or Rich, each package imports only those below it, and no modules import each other
in a cycle. Dependency direction, from the top:

    cli -> ui -> tune, eval -> store, models -> chat -> reflection -> engine, demo
        -> paths, sizes, ...
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import reflectchat

PACKAGE = Path(reflectchat.__file__).parent
# package -> layer; a module may import its own package and any lower layer
LAYERS = {"cli": 7, "ui": 6, "tune": 5, "eval": 5, "store": 4, "models": 4, "chat": 3,
          "reflection": 2, "engine": 1, "demo": 1}
HELPERS = 0  # top-level modules (paths, sizes, untrusted, config, __init__)
DOMAIN = ("engine", "reflection", "chat", "models", "store", "tune", "eval", "demo")


def module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE)], "reflectchat.")
                  if m.name != "reflectchat.__main__")


def layer(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if module.count(".") else ""
    return (part, LAYERS[part]) if part in LAYERS else ("", HELPERS)


def imports_of(module: str) -> set[str]:
    """Every reflectchat module `module` imports, at the top or inside a function."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    tree = ast.parse(source.read_text(encoding="utf-8"))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and ast.unparse(block.test) == "TYPE_CHECKING"
                 for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:  # for type checkers only: no import at run time
            continue
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("reflectchat"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in ALL else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("reflectchat")}
    return found - {module}


ALL = set(module_names())


def test_each_package_imports_only_its_own_and_lower_layers():
    wrong = []
    for module in ALL:
        package, rank = layer(module)
        for imported in imports_of(module):
            other, other_rank = layer(imported)
            if other != package and other_rank >= rank:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_no_module_imports_itself_through_others():
    graph = {m: imports_of(m) & ALL for m in ALL}
    cycles = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt], on_path | {nxt}, done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start}, done)
    assert cycles == []


BLOCK_UI_LIBRARIES = """
import importlib, json, sys

class NoUILibraries:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("textual", "rich"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, NoUILibraries())
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = str(exc)
print(json.dumps(failed))
"""


def test_the_domain_imports_neither_textual_nor_rich():
    """Imported with textual and rich made unimportable, every domain module still loads.
    (Blocking beats reading sys.modules: httpx imports rich for its own CLI when it can.)"""
    domain = sorted(m for m in ALL if layer(m)[0] in DOMAIN or layer(m)[1] == HELPERS)
    assert len(domain) > 30  # the walk found the packages
    done = subprocess.run([sys.executable, "-c", BLOCK_UI_LIBRARIES, json.dumps(domain)],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {}


def test_the_layering_check_catches_a_ui_import():
    done = subprocess.run([sys.executable, "-c", BLOCK_UI_LIBRARIES,
                           json.dumps(["reflectchat.ui.themes"])],
                          capture_output=True, text=True, check=True)
    assert "textual" in json.loads(done.stdout)["reflectchat.ui.themes"]


ADAPTERS = {"reflectchat.engine.llama_cpp_api", "reflectchat.engine.llama_cpp_model"}
PRIVATE = ("._llm", "._model", "._ctx", "._batch", "._input_ids")


def test_only_the_adapter_touches_llama_cpp_python():
    """One home for llama-cpp-python (its two adapter modules): no other module imports it or
    reaches into its objects' private attributes, so an upgrade is checked in one place."""
    wrong = []
    for module in ALL - ADAPTERS:
        path = PACKAGE.joinpath(*module.split(".")[1:])
        source = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text(
            encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            wrong += [f"{module} imports {n}" for n in names if n.split(".")[0] == "llama_cpp"]
        wrong += [f"{module} reads {p}" for p in PRIVATE if p in source]
    assert wrong == []


def test_the_readme_layout_names_every_module_and_none_is_over_400_lines():
    layout = (PACKAGE.parent / "README.md").read_text(encoding="utf-8").split(
        "## How the code is laid out", 1)[1]
    modules = [p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) > 100
    assert [p.name for p in modules if p.name not in layout] == []
    long = {p.name: n for p in modules
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
