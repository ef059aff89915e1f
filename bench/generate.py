"""A deterministic synthetic catalog for the benchmarks: N families of 5 variants in F files.

The same arguments always give byte-identical files, so the validate, plan and apply benchmarks
can share one generated catalog and compare runs. Run as `python -m bench.generate OUT_DIR`.
"""

from __future__ import annotations

import argparse
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from reconciler.catalog import to_yaml

SIZES = ("XS", "S", "M", "L", "XL")
COLOURS = ("Black", "White", "Navy", "Olive", "Sand", "Red", "Grey")
CATEGORIES = (
    "Apparel / Tops",
    "Apparel / Bottoms",
    "Apparel / Outerwear",
    "Footwear",
    "Accessories / Bags",
    "Accessories / Hats",
)
TAGS = ("summer", "winter", "cotton", "wool", "organic", "sale", "new", "classic")
WORDS = ("Classic", "Everyday", "Heavy", "Light", "Relaxed", "Slim", "Field", "Harbour")
NOUNS = ("Tee", "Hoodie", "Chino", "Jacket", "Sneaker", "Tote", "Beanie", "Shirt", "Short")
BRANDS = tuple(f"Brand {n:02d}" for n in range(20))
SUPPLIERS = tuple(f"Supplier {n:02d}" for n in range(10))


def gtin13(number: int) -> str:
    """A valid GTIN-13 for a 12-digit body (the check digit computed, not guessed)."""
    body = f"{number:012d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _family(index: int, rng: random.Random) -> dict[str, object]:
    handle = f"product-{index:05d}"
    colours = rng.sample(COLOURS, 2)
    sizes = rng.sample(SIZES, 3)
    combos = [(s, c) for c in colours for s in sizes][:5]
    price = rng.randrange(900, 15000) / 100
    variants = [
        {
            "sku": f"SKU-{index:05d}-{n}",
            "options": {"Size": size, "Colour": colour},
            "barcode": gtin13(200_000_000_000 + index * 10 + n),
            **({"price": f"{price + 2:.2f}"} if size == "XL" else {}),
        }
        for n, (size, colour) in enumerate(combos)
    ]
    return {
        "handle": handle,
        "name": f"{rng.choice(WORDS)} {rng.choice(NOUNS)} {index:05d}",
        "description": f"<p>Generated product number {index}.</p>",
        "brand": rng.choice(BRANDS),
        "supplier": rng.choice(SUPPLIERS),
        "supplier_code": f"SUP-{index:05d}",
        "category": rng.choice(CATEGORIES),
        "tags": sorted(rng.sample(TAGS, 2)),
        "price": f"{price:.2f}",
        "supply_price": f"{price * 0.4:.2f}",
        "options": ["Size", "Colour"],
        "variants": variants,
    }


def generate_catalog(out_dir: Path, *, families: int = 10_000, files: int = 20) -> None:
    """Write `families` families of 5 variants each, spread over `files` YAML files.

    The first file is `catalog.yaml` and also carries the settings, brands, suppliers and tags.
    Existing `*.yaml` files in `out_dir` are removed first so a smaller run leaves no leftovers.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    rng = random.Random(20240601)
    all_families = [_family(i, rng) for i in range(families)]
    per_file = -(-families // files) if families else 0
    for n in range(files):
        chunk = all_families[n * per_file : (n + 1) * per_file]
        doc: dict[str, object] = {}
        if n == 0:
            doc["settings"] = {"prune": "none"}
            doc["brands"] = [{"name": b} for b in BRANDS]
            doc["suppliers"] = [{"name": s} for s in SUPPLIERS]
            doc["tags"] = list(TAGS)
        doc["products"] = chunk
        name = "catalog.yaml" if n == 0 else f"products-{n:02d}.yaml"
        (out_dir / name).write_text(to_yaml(doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args(argv)
    generate_catalog(args.out_dir, families=args.families, files=args.files)


if __name__ == "__main__":
    main()


# --- small real images -------------------------------------------------------------------------
# Pure standard library, so examples and benchmarks can carry real, decodable image files
# without an imaging dependency.


def png_bytes(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """An 8-bit RGB PNG whose pixel (x, y) has the colour `pixel(x, y)`."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


# The standard JPEG luminance DC Huffman table (ITU T.81 K.3): code lengths and symbols.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))


def _huffman_codes(bits: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    codes: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def jpeg_bytes(width: int, height: int, block: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A baseline YCbCr JPEG made of flat 8x8 blocks; block (bx, by) has colour `block(bx, by)`.

    Only the DC coefficient of each block is coded (every AC coefficient is zero), which keeps
    the encoder a few lines long while producing a file any decoder reads: a colour mosaic.
    """
    if width % 8 or height % 8:
        raise ValueError(f"width and height must be multiples of 8, not {width}x{height}")
    dc = _huffman_codes(_DC_BITS, _DC_VALUES)
    # A one-symbol AC table: end-of-block, coded as "0".
    out_bits: list[tuple[int, int]] = []

    def emit_dc(diff: int) -> None:
        magnitude = abs(diff).bit_length()
        out_bits.append(dc[magnitude])
        if magnitude:
            value = diff if diff > 0 else diff + (1 << magnitude) - 1
            out_bits.append((value, magnitude))
        out_bits.append((0, 1))  # AC: end of block

    previous = [0, 0, 0]
    for by in range(height // 8):
        for bx in range(width // 8):
            r, g, b = block(bx, by)
            ycc = (
                0.299 * r + 0.587 * g + 0.114 * b,
                128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
            )
            for i, level in enumerate(ycc):
                coefficient = round(8 * (level - 128))  # DC of a flat block, quantizer 1
                emit_dc(coefficient - previous[i])
                previous[i] = coefficient
    scan = bytearray()
    acc = 0
    count = 0
    for value, length in out_bits:
        acc = (acc << length) | value
        count += length
        while count >= 8:
            byte = (acc >> (count - 8)) & 0xFF
            scan.append(byte)
            if byte == 0xFF:
                scan.append(0x00)  # byte stuffing
            count -= 8
    if count:
        byte = ((acc << (8 - count)) | ((1 << (8 - count)) - 1)) & 0xFF
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0x00)

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    quant = b"\x00" + b"\x01" * 64
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"".join(
        bytes((i, 0x11, 0)) for i in (1, 2, 3)
    )
    dc_table = b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALUES)
    ac_table = b"\x10" + bytes((1,) + (0,) * 15) + b"\x00"
    scan_header = b"\x03" + b"".join(bytes((i, 0x00)) for i in (1, 2, 3)) + b"\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + segment(0xE0, jfif)
        + segment(0xDB, quant)
        + segment(0xC0, frame)
        + segment(0xC4, dc_table)
        + segment(0xC4, ac_table)
        + segment(0xDA, scan_header)
        + bytes(scan)
        + b"\xff\xd9"
    )
