"""The explorer's controller (runs with or without a window), its modes and its background scene loader."""
from llmviz.scenes.explorer.controller import DEFAULT_SCENE, Explorer

__all__ = ["DEFAULT_SCENE", "Explorer"]
