"""Exports of a view as files other programs open: a vector schematic (svg.py); a self-contained page later."""
