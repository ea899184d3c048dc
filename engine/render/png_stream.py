"""A PNG written band by band: an 8-bit RGB image of any size encoded as its rows arrive, in bounded memory.

Pillow encodes a whole image held in memory; a tiled 16K picture arrives one row of tiles at a time,
and each band is filtered ("Sub": each byte minus the one a pixel to its left, vectorised) and fed to
one zlib stream whose output goes to the file as IDAT chunks. Nothing larger than one band is held (and a few rows of it filtered at a time).
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, Iterable

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_SUB = 1
IDAT_BYTES = 1 << 20  # compressed bytes gathered before a chunk is written
CHUNK_ROWS = 64  # rows filtered at once (a 16384-wide row is 48 KiB)
MAX_SIDE = 2 ** 31 - 1  # the format's limit on either side


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def sub_filtered(rows: np.ndarray) -> bytes:
    """Rows (n, width, 3) uint8 as PNG scanlines with the Sub filter: the filter byte, then each byte minus
    the same channel of the pixel to its left (modulo 256)."""
    flat = rows.reshape(len(rows), -1)
    out = np.empty((len(rows), flat.shape[1] + 1), np.uint8)
    out[:, 0] = FILTER_SUB
    out[:, 1:4] = flat[:, :3]
    np.subtract(flat[:, 3:], flat[:, :-3], out=out[:, 4:])
    return out.tobytes()


def write_png(file: BinaryIO, size: tuple[int, int], bands: Iterable[np.ndarray], level: int = 6) -> int:
    """Write an RGB PNG of ``size`` (w, h) to ``file`` from ``bands`` (each (rows, w, 3) uint8, top first,
    h rows in all); returns the bytes written. A wrong band shape or row count raises ValueError."""
    w, h = (int(v) for v in size)
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"a PNG is 1 to {MAX_SIDE} pixels a side, not {w}x{h}")
    written = file.write(SIGNATURE)
    written += file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
    packer = zlib.compressobj(level)
    pending, rows = [], 0
    for band in bands:
        band = np.asarray(band)
        if band.dtype != np.uint8 or band.ndim != 3 or band.shape[1:] != (w, 3):
            raise ValueError(f"a band must be (rows, {w}, 3) uint8, got {band.shape} {band.dtype}")
        rows += len(band)
        if rows > h:
            raise ValueError(f"the bands hold more than the image's {h} rows")
        for start in range(0, len(band), CHUNK_ROWS):  # filtered a few rows at a time: no copy of the band
            pending.append(packer.compress(sub_filtered(band[start:start + CHUNK_ROWS])))
        if sum(map(len, pending)) >= IDAT_BYTES:
            written += file.write(_chunk(b"IDAT", b"".join(pending)))
            pending = []
    if rows != h:
        raise ValueError(f"the bands hold {rows} rows, the image {h}")
    pending.append(packer.flush())
    written += file.write(_chunk(b"IDAT", b"".join(pending)))
    written += file.write(_chunk(b"IEND", b""))
    return written
