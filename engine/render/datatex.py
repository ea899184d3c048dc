"""A shelf packer that hands out rectangular regions of a fixed-size atlas texture.

Used for the float data atlas (one region per tensor block) and for the glyph atlas. Shelves
are horizontal strips; a request goes to the lowest-waste shelf that still has room, or opens
a new shelf. Nothing is freed individually: ``reset`` empties the whole atlas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


class DataStaging:
    """The data atlas's alloc/write calls, recorded off the frame thread and played back on it.

    A scene built on a worker thread cannot touch GL; it allocates from a packer of its own and
    queues its writes here. On the frame thread, ``apply(renderer)`` hands the packer to the
    renderer (the old scene's regions are forgotten) and uploads what was queued, clearing the
    highlight mask under each new region.
    """

    def __init__(self, width: int, height: int, packer: ShelfPacker | None = None):
        # ``packer``: allocate beside what the renderer already holds (a second view's scene).
        self.shared = packer is not None
        self.packer = packer or ShelfPacker(width, height)
        self.writes: list = []  # (x, y, float32 array)

    def alloc_data(self, rows: int, cols: int) -> tuple[int, int]:
        return self.packer.alloc(cols, rows)

    def write_data(self, x: int, y: int, values) -> None:
        self.writes.append((int(x), int(y), values))

    def apply(self, renderer) -> int:
        """Upload on the frame thread; returns the number of texels written."""
        if not self.shared:
            renderer.data_packer = self.packer
        texels = 0
        for x, y, values in self.writes:
            values = np.asarray(values, np.float32)
            renderer.write_data(x, y, values)
            renderer.write_highlight(x, y, np.zeros(values.shape, np.uint8))
            texels += values.size
        self.writes = []
        return texels
