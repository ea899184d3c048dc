"""Bundled data: font, weights, chapter scripts and key bindings, found through importlib.resources."""
