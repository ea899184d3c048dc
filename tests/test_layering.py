"""DESIGN.md's arrows: scenes may import engine and models; engine and models never import each other or scenes."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {"engine": ("llmviz.models", "llmviz.scenes", "torch"), "models": ("llmviz.engine", "llmviz.scenes", "moderngl"),
             # common/ is below all three: engine, models and scenes may use it, it uses none of them
             "common": ("llmviz.engine", "llmviz.models", "llmviz.scenes", "torch", "moderngl", "numpy")}


def imported_modules(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_across_the_layers(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            # models/ may use torch (its simulations do); the engine may not, nor may models use GL.
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[package]):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)
