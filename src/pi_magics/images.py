"""Images sent with a prompt: ``%%pi --image PATH`` or ``--image NAME`` (a variable).

Everything is checked before anything is sent: the file exists and is a PNG, JPEG, GIF or
WebP image (by its first bytes, not its name), it is not too large, and a variable holds an
image (a matplotlib figure, a PIL image, anything with ``_repr_png_``, or image bytes).
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
    line = f"{spec} ({image_line(data, kind)})"
    return ImageContent(data=base64.b64encode(data).decode("ascii"), mime_type=kind), line


def image_line(data: bytes, kind: str) -> str:
    """An image as a cell and a transcript keep it instead of the image itself: its type,
    size in pixels (PNG) and bytes, and the start of its SHA-256 (the same image, the same
    line, whether sent with a prompt or shown by Pi's code)."""
    pixels = ""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:  # IHDR: width, height
        width, height = struct.unpack(">II", data[16:24])
        pixels = f" {width}x{height}"
    return f"{kind}{pixels}, {_size(len(data))}, {hashlib.sha256(data).hexdigest()[:12]}"


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
