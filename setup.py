"""Maps the top-level folders onto one import namespace: engine/ -> llmviz.engine, and so on.

pyproject.toml holds the metadata; this file only computes the package list, because
setuptools cannot glob sub-packages under a package-dir mapping from pyproject alone.
"""
import os

from setuptools import setup

ROOTS = {"engine": "llmviz.engine", "scenes": "llmviz.scenes", "models": "llmviz.models",
         "shaders": "llmviz.shaders", "assets": "llmviz.assets",
         "common": "llmviz.common"}


def _packages():
    packages, package_dir = [], {}
    for folder, name in ROOTS.items():
        for dirpath, dirnames, _ in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            dotted = name + dirpath[len(folder):].replace(os.sep, ".")
            packages.append(dotted)
            package_dir[dotted] = dirpath
    return packages, package_dir


packages, package_dir = _packages()
setup(packages=packages, package_dir=package_dir)
