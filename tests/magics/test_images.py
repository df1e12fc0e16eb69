"""Images for Pi without a kernel: the size in pixels read from headers, and the bound."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pi_kernel.errors import ImageError
from pi_magics.images import image_line, image_size, load_image, pixels_problem


def huge_png(width: int, height: int) -> bytes:
    """A black 1-bit PNG of ``width`` x ``height``: a few hundred KB on disk, whatever its
    pixels (rows of zeros compress to almost nothing)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def saved(mode: str, size: tuple[int, int], image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "image_format", "options"),
    [
        ("RGB", "PNG", {}),
        ("RGB", "JPEG", {}),
        ("RGB", "JPEG", {"progressive": True}),
        ("P", "GIF", {}),
        ("RGB", "WEBP", {}),  # lossy: VP8
        ("RGB", "WEBP", {"lossless": True}),  # VP8L
        ("RGBA", "WEBP", {}),  # with alpha: VP8X
    ],
)
def test_the_size_in_pixels_is_read_from_the_header_of_every_format_pi_takes(
    mode: str, image_format: str, options: dict[str, object]
):
    data = saved(mode, (321, 123), image_format, **options)
    assert image_size(data) == (321, 123)
    assert pixels_problem(data) is None


def test_a_huge_image_small_on_disk_is_above_the_bound_and_says_so():
    data = huge_png(20_000, 20_000)
    assert len(data) < 500_000
    assert image_size(data) == (20_000, 20_000)
    assert pixels_problem(data) == (
        "20000x20000 pixels (400 megapixels) is above the bound of 25 megapixels"
    )
    assert image_line(data, "image/png").startswith("image/png 20000x20000, ")


def test_an_image_whose_header_does_not_say_its_size_is_refused():
    truncated = saved("RGB", (8, 8), "JPEG")[:20]
    assert image_size(truncated) is None
    assert pixels_problem(truncated) == "its size in pixels cannot be read from its header"


def test_the_pixel_bound_holds_for_an_image_sent_with_the_prompt(tmp_path: Path):
    (tmp_path / "huge.png").write_bytes(huge_png(6_000, 5_000))
    with pytest.raises(ImageError) as raised:
        load_image(str(tmp_path / "huge.png"), {})
    assert str(raised.value).endswith(
        "huge.png: 6000x5000 pixels (30 megapixels) is above the bound of 25 megapixels."
    )
    image, line = load_image("small", {"small": huge_png(5_000, 5_000)})
    assert image.mime_type == "image/png"
    assert line.startswith("small (image/png 5000x5000, ")
