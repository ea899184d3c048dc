"""DESIGN.md's arrows: scenes may import engine and models; engine and models never import each other or scenes.

Relative imports count too: `from ..models import x` in engine/ crosses the layers as surely as
`from llmviz.models import x`, so every import is resolved to its absolute name before checking.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {"engine": ("llmviz.models", "llmviz.scenes", "torch"), "models": ("llmviz.engine", "llmviz.scenes", "moderngl"),
             # common/ is below all three: engine, models and scenes may use it, it uses none of them
             "common": ("llmviz.engine", "llmviz.models", "llmviz.scenes", "torch", "moderngl", "numpy")}
ABOVE_THE_PACKAGE = "<relative import above llmviz>"


def module_name(path: pathlib.Path) -> str:
    """The installed name of a source file: engine/systems/packets.py -> llmviz.engine.systems.packets."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["llmviz", *parts])


def imported_modules(source: str, module: str, is_package: bool = False, filename: str = "<source>"):
    """(line, absolute module name) of every import in `source`, the code of `module`; relative
    imports are resolved against the module's package, `from . import x` to package.x."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.ImportFrom):
            if node.level - 1 >= len(package):
                yield node.lineno, ABOVE_THE_PACKAGE
                continue
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # `from .. import models`: each name may be a module of that package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])


def crossings(package: str, files) -> list[str]:
    """The imports of `files` ((path, source) pairs inside `package`) that break the arrows."""
    found = []
    for path, source in files:
        for line, module in imported_modules(source, module_name(path), path.name == "__init__.py", str(path)):
            # models/ may use torch (its simulations do); the engine may not, nor may models use GL.
            if module == ABOVE_THE_PACKAGE or any(module == bad or module.startswith(bad + ".")
                                                  for bad in FORBIDDEN[package]):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_across_the_layers(package):
    files = [(path, path.read_text()) for path in sorted((ROOT / package).rglob("*.py"))]
    offenders = crossings(package, files)
    assert not offenders, "\n".join(offenders)


def test_the_checker_catches_relative_crossings():
    engine_file = ROOT / "engine" / "systems" / "example.py"
    engine_source = ("from ..ecs.world import World\n"            # engine -> engine: allowed
                     "from . import packets\n"                    # allowed
                     "from ...models import registry\n"          # engine -> models, relative
                     "from ... import scenes\n"                   # engine -> scenes, as a package name
                     "def late():\n"
                     "    from ...models.sim import tick\n")      # inside a function, still caught
    assert crossings("engine", [(engine_file, engine_source)]) == [
        "engine/systems/example.py:3 imports llmviz.models",
        "engine/systems/example.py:4 imports llmviz.scenes",
        "engine/systems/example.py:6 imports llmviz.models.sim",
    ]
    models_init = ROOT / "models" / "sim" / "__init__.py"   # in a package's __init__, `.` is the package itself
    models_source = "from . import tick\nfrom ..registry import load_registry\nfrom ...engine.render import gl\n"
    assert crossings("models", [(models_init, models_source)]) == [
        "models/sim/__init__.py:3 imports llmviz.engine.render"]
    models_file = ROOT / "models" / "params.py"
    assert crossings("models", [(models_file, "from ..engine import camera\nfrom .... import x\n")]) == [
        "models/params.py:1 imports llmviz.engine",
        f"models/params.py:2 imports {ABOVE_THE_PACKAGE}"]
    # the absolute forms, as before
    assert crossings("engine", [(engine_file, "import torch\nfrom llmviz.scenes import app\n")]) == [
        "engine/systems/example.py:1 imports torch", "engine/systems/example.py:2 imports llmviz.scenes"]
