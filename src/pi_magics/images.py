"""Images sent with a prompt: ``%%pi --image PATH`` or ``--image NAME`` (a variable).

Everything is checked before anything is sent: the file exists and is a PNG, JPEG, GIF or
WebP image (by its first bytes, not its name), it is not too large in bytes nor in pixels,
and a variable holds an image (a matplotlib figure, a PIL image, anything with
``_repr_png_``, or image bytes).

The pixels are the bound that matters to Pi: it decodes every image it is sent, to fit it to
the model, at 4 bytes a pixel: a 17 KB PNG of 12000x12000 pixels raised its peak memory by
1.6 GB.  The size is read from the image's header (PNG's IHDR, JPEG's start of frame, GIF's
screen, WebP's VP8/VP8L/VP8X), never by decoding it; an image whose header does not say is
refused too.  Pi's code's images (``workbench``) are held to the same bound.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
from pathlib import Path
from typing import Any

from pi_kernel.errors import ImageError
from pi_kernel.rpc.protocol import ImageContent

IMAGE_LIMIT_BYTES = 5 * 1024 * 1024
"""The largest image sent with a prompt (providers refuse larger ones, some at 5 MB)."""
MAX_MEGAPIXELS = 25
"""The most pixels, in millions, of an image sent to Pi: about 100 MB when Pi decodes it,
and far more than any model is shown (Pi fits images into 2000x2000)."""
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The image's MIME type from its first bytes, if Pi can send it."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def load_image(spec: str, namespace: dict[str, Any]) -> tuple[ImageContent, str]:
    """The image ``spec`` names (a variable if one has that name, else a file), and a line
    describing it for the cell and the transcript (name, type, size, hash)."""
    if spec.isidentifier() and spec in namespace:
        data = _image_bytes(namespace[spec], spec)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ImageError(f"--image {spec}: no such file, and no variable of that name.")
        if path.stat().st_size > IMAGE_LIMIT_BYTES:
            raise ImageError(_too_large(spec, path.stat().st_size))
        data = path.read_bytes()
    if len(data) > IMAGE_LIMIT_BYTES:
        raise ImageError(_too_large(spec, len(data)))
    kind = image_type(data)
    if kind is None:
        raise ImageError(f"--image {spec}: not a PNG, JPEG, GIF or WebP image.")
    problem = pixels_problem(data)
    if problem is not None:
        raise ImageError(f"--image {spec}: {problem}.")
    line = f"{spec} ({image_line(data, kind)})"
    return ImageContent(data=base64.b64encode(data).decode("ascii"), mime_type=kind), line


def image_line(data: bytes, kind: str) -> str:
    """An image as a cell and a transcript keep it instead of the image itself: its type,
    size in pixels (as its header says) and bytes, and the start of its SHA-256 (the same
    image, the same line, whether sent with a prompt or shown by Pi's code)."""
    size = image_size(data)
    pixels = f" {size[0]}x{size[1]}" if size is not None else ""
    return f"{kind}{pixels}, {_size(len(data))}, {hashlib.sha256(data).hexdigest()[:12]}"


def pixels_problem(data: bytes) -> str | None:
    """Why the image must not go to Pi for its pixels (too many, or unknown), or None."""
    size = image_size(data)
    if size is None:
        return "its size in pixels cannot be read from its header"
    width, height = size
    if width * height > MAX_MEGAPIXELS * 1_000_000:
        return (
            f"{width}x{height} pixels ({width * height / 1e6:,.0f} megapixels) is above the "
            f"bound of {MAX_MEGAPIXELS} megapixels"
        )
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image's header, without decoding it; None if it does not
    say (a truncated or unknown image)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:  # the header ends too soon
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: the key frame's size
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":  # lossless: 14 bits each, less one
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, 24 bits each, less one
        if len(data) < 30:
            return None
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""The start-of-frame markers (0xC4, 0xC8 and 0xCC are tables, not frames)."""
_JPEG_BARE = frozenset({0x01, *range(0xD0, 0xD9)})
"""Markers without a length: TEM, the restarts, start of image."""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The first frame's size: the segments are walked by their lengths up to it."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_BARE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan: no frame came before it
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def _image_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if hasattr(value, "savefig"):  # a matplotlib figure
        buffer = io.BytesIO()
        value.savefig(buffer, format="png")
        return buffer.getvalue()
    if hasattr(value, "_repr_png_"):  # a PIL image, and whatever else draws itself as PNG
        png = value._repr_png_()
        if isinstance(png, bytes):
            return png
        if isinstance(png, str):
            return base64.b64decode(png)
    raise ImageError(
        f"--image {name}: a {type(value).__name__} is not an image (a matplotlib figure, a PIL "
        "image or image bytes are)."
    )


def _too_large(spec: str, size: int) -> str:
    limit = _size(IMAGE_LIMIT_BYTES)
    return f"--image {spec}: {_size(size)} is too large to send (at most {limit})."


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"
