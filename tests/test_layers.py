"""The layout stays as drawn (docs/explanations/layers.md): every import inside dermseg_deploy, lazy and TYPE_CHECKING ones
included, goes down the layers, and none closes a cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "dermseg_deploy"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
LAYERS = (
    ("errors", "defaults", "version"),
    ("util",),
    ("model",),
    ("tensorrt",),
    ("backends",),
    ("core",),
    ("files",),
    ("segment",),
    ("evaluation", "export", "scale", "bench"),
    ("cli",),
)
"""Each layer may import the layers before it, and modules of its own folder; folders of one layer do not import
each other. Outside the layers: the package's root `__init__` (a lazy facade that nothing inside imports) and
`samples` (data, which any layer may read)."""
FACADE = "__init__"
DATA = "samples"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every module of `modules` that the code `source` (module `name`) imports anywhere: at the top, in function
    bodies, under TYPE_CHECKING."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path.read_text(), module_name(path), path.name == "__init__.py", modules)
            for path in files}


def folder_of(module: str) -> str:
    """The top-level folder (or root module) of a dermseg_deploy module; `__init__` for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def layer_of(module: str) -> int:
    folder = folder_of(module)
    for index, names in enumerate(LAYERS):
        if folder in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS here and to docs/explanations/layers.md")


def layering_problems(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in sorted(graph.items()):
        if folder_of(module) in (FACADE, DATA):
            continue
        for target in sorted(targets):
            if folder_of(target) == DATA:
                continue
            if folder_of(target) == FACADE:
                wrong.append(f"{module} imports the package facade; import the module that defines the name")
                continue
            source, destination = layer_of(module), layer_of(target)
            if destination > source or (destination == source and folder_of(target) != folder_of(module)):
                wrong.append(f"{module} (layer {source}) imports {target} (layer {destination})")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each cycle found by a depth-first walk, as `a -> b -> a`."""
    state: dict[str, int] = {}
    found: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_every_import_goes_down_the_layers() -> None:
    problems = layering_problems(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_closes_a_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "\n".join(found)


def test_every_folder_is_in_a_layer() -> None:
    folders = {path.name for path in ROOT.iterdir() if path.is_dir() and (path / "__init__.py").is_file()}
    modules = {path.stem for path in ROOT.glob("*.py")} - {FACADE}
    named = {name for layer in LAYERS for name in layer}
    assert folders | modules <= named | {DATA}, sorted((folders | modules) - named - {DATA})


@pytest.mark.parametrize("source,problem", [
    ("def f():\n    from ..cli import run\n", "dermseg_deploy.core.x (layer 5) imports dermseg_deploy.cli.run (layer 9)"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..files.inputs import image_files\n",
     "dermseg_deploy.core.x (layer 5) imports dermseg_deploy.files.inputs (layer 6)"),
    ("from .. import Segmenter\n", "dermseg_deploy.core.x imports the package facade"),
])
def test_the_checker_sees_lazy_and_type_checking_imports(source: str, problem: str) -> None:
    modules = {"dermseg_deploy", "dermseg_deploy.core.x", "dermseg_deploy.cli.run", "dermseg_deploy.files.inputs"}
    graph = {"dermseg_deploy.core.x": imported_modules(source, "dermseg_deploy.core.x", False, modules)}
    assert any(line.startswith(problem) for line in layering_problems(graph)), layering_problems(graph)


def test_the_checker_finds_a_cycle() -> None:
    graph = {"dermseg_deploy.core.a": {"dermseg_deploy.core.b"}, "dermseg_deploy.core.b": {"dermseg_deploy.core.a"}}
    assert cycles(graph) == ["dermseg_deploy.core.a -> dermseg_deploy.core.b -> dermseg_deploy.core.a"]
