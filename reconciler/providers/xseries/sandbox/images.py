"""Recognising image uploads by their bytes, as the real store does (names and declared types
are ignored), and the sizes its CDN advertises."""

from __future__ import annotations

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES_PER_PRODUCT = 250

# The size names the real CDN reports in `images[].sizes`; the sandbox serves the original
# bytes under each of them.
SIZE_NAMES = ("original", "standard", "thumb", "ss", "st", "sl", "sm")

# A 1x1 transparent PNG, served where the real store shows its "no image" placeholder.
PLACEHOLDER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def sniff(data: bytes) -> tuple[str, str] | None:
    """(media type, file extension) of an allowed image format, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "gif"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff", "tif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None
