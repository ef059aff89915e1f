"""The sizes the store's image CDN advertises, and its placeholder. Uploads are recognised by
their bytes (`reconciler.rules.sniff_image`), as the real store does; its limits are
`reconciler.rules.MAX_IMAGE_BYTES` and `MAX_IMAGES_PER_PRODUCT`."""

from __future__ import annotations

# The size names the real CDN reports in `images[].sizes`; the sandbox serves the original
# bytes under each of them.
SIZE_NAMES = ("original", "standard", "thumb", "ss", "st", "sl", "sm")

# A 1x1 transparent PNG, served where the real store shows its "no image" placeholder.
PLACEHOLDER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
