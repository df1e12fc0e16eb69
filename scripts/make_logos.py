"""Draw the kernelspec logos (a white π on Pi-dark) as PNGs, without an imaging library.

Run once; the PNGs are committed in ``kernelspec/``: ``python scripts/make_logos.py``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

BACKGROUND = (24, 24, 27)
FOREGROUND = (250, 250, 250)
KERNELSPEC = Path(__file__).resolve().parents[1] / "kernelspec"


def _inside(x: float, y: float) -> bool:
    """A π drawn on the unit square: a bar across the top and two legs."""
    top = 0.22 <= y <= 0.34 and 0.16 <= x <= 0.84
    left_leg = 0.30 <= x <= 0.42 and 0.28 <= y <= 0.82
    right_leg = 0.58 <= x <= 0.70 and 0.28 <= y <= 0.82
    return top or left_leg or right_leg


def png(size: int) -> bytes:
    rows = []
    for row in range(size):
        pixels = bytearray([0])  # filter type: none
        for column in range(size):
            x, y = (column + 0.5) / size, (row + 0.5) / size
            pixels += bytes(FOREGROUND if _inside(x, y) else BACKGROUND)
        rows.append(bytes(pixels))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(b"".join(rows), 9)),
            chunk(b"IEND", b""),
        ]
    )


if __name__ == "__main__":
    for size in (32, 64):
        (KERNELSPEC / f"logo-{size}x{size}.png").write_bytes(png(size))
