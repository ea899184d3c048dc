"""models/specs: the built-in ModelSpec data files, one JSON file per model (package data)."""
