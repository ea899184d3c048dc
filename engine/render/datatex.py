"""A shelf packer that hands out rectangular regions of a fixed-size atlas texture.

Used for the float data atlas (one region per tensor block) and for the glyph atlas. Shelves
are horizontal strips; a request goes to the lowest-waste shelf that still has room, or opens
a new shelf. Nothing is freed individually: ``reset`` empties the whole atlas.
"""
from __future__ import annotations

from dataclasses import dataclass


class AtlasFullError(RuntimeError):
    """A region did not fit in what is left of the atlas."""


@dataclass
class _Shelf:
    y: int
    height: int
    x: int = 0  # next free column


class ShelfPacker:
    def __init__(self, width: int, height: int):
        self.width = int(width)
        self.height = int(height)
        self.reset()

    def reset(self) -> None:
        self._shelves: list[_Shelf] = []
        self._top = 0  # first row not covered by a shelf
        self.used_texels = 0

    def alloc(self, cols: int, rows: int) -> tuple[int, int]:
        """Reserve cols x rows texels; returns the region's origin (x, y)."""
        cols, rows = int(cols), int(rows)
        if cols <= 0 or rows <= 0:
            raise ValueError(f"region must be at least 1x1 texels, got {cols}x{rows}")
        if cols > self.width or rows > self.height:
            raise AtlasFullError(f"a {cols}x{rows} region cannot fit a {self.width}x{self.height} atlas")
        best = None
        for shelf in self._shelves:
            # Accept shelves up to twice the request's height so tall shelves are not
            # filled with thin strips while short requests could start a fitting shelf.
            if rows <= shelf.height and shelf.x + cols <= self.width:
                fits_well = shelf.height <= 2 * rows or self._top + rows > self.height
                if fits_well and (best is None or shelf.height < best.height):
                    best = shelf
        if best is None:
            if self._top + rows > self.height:
                raise AtlasFullError(f"no room for a {cols}x{rows} region: the {self.width}x{self.height} "
                                     f"atlas is {self.used_texels / (self.width * self.height):.0%} used")
            best = _Shelf(self._top, rows)
            self._shelves.append(best)
            self._top += rows
        x, y = best.x, best.y
        best.x += cols
        self.used_texels += cols * rows
        return x, y

    @property
    def used_fraction(self) -> float:
        return self.used_texels / float(self.width * self.height)
