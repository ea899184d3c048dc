"""Exports of a view as files other programs open: a vector schematic (svg.py), a video of a replayed script (video.py), a self-contained page later."""
