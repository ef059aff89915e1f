"""The parse cache: unchanged files are not read again, and a bad cache is only ever ignored."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from reconciler.catalog import load_catalog

from .helpers import Write, check, problems

TEE = "products:\n  - {handle: tee, name: Tee, sku: TEE, price: 25.00}\n"


def _cache(workdir: Path) -> Path:
    return workdir / ".catalog" / "parse-cache"


def _tamper(cache: Path, old: str, new: str) -> None:
    """Edit the cached results directly (re-signing them, as only a deliberate edit could): if a
    load shows the edit, the file was not read again."""
    header_line, _, body = cache.read_bytes().partition(b"\n")
    assert old.encode() in body
    body = body.replace(old.encode(), new.encode())
    header = json.loads(header_line)
    header["sha256"] = hashlib.sha256(body).hexdigest()
    cache.write_bytes(json.dumps(header).encode() + b"\n" + body)


def test_unchanged_files_come_from_the_cache(write: Write, workdir: Path) -> None:
    write("a.yaml", TEE)
    cache = _cache(workdir)
    first = load_catalog(Path("catalog"), cache_path=cache)
    assert cache.exists()
    _tamper(cache, '"name":"Tee"', '"name":"Tee from cache"')
    warm = load_catalog(Path("catalog"), cache_path=cache)
    assert warm.products[0].name == "Tee from cache"
    assert first.products[0].name == "Tee"


def test_a_changed_file_is_read_again(write: Write, workdir: Path) -> None:
    write("a.yaml", TEE)
    cache = _cache(workdir)
    load_catalog(Path("catalog"), cache_path=cache)
    _tamper(cache, '"name":"Tee"', '"name":"Tee from cache"')
    write("a.yaml", TEE.replace("25.00", "27.00"))
    product = load_catalog(Path("catalog"), cache_path=cache).products[0]
    assert (product.name, str(product.price)) == ("Tee", "27.00")


def test_a_renamed_file_is_read_again(write: Write, workdir: Path, catalog_dir: Path) -> None:
    # `settings` is allowed only in catalog.yaml, so a file's name is part of its result.
    write("catalog.yaml", "settings: {prune: none}\n")
    cache = _cache(workdir)
    assert problems(cache_path=cache) == []
    (catalog_dir / "catalog.yaml").rename(catalog_dir / "other.yaml")
    assert len(problems(cache_path=cache)) == 1


def test_cross_file_checks_run_on_cached_files(write: Write, workdir: Path) -> None:
    cache = _cache(workdir)
    write("a.yaml", TEE)
    write("b.yaml", TEE.replace("handle: tee, name: Tee", "handle: tee2, name: Tee 2"))
    cold = problems(cache_path=cache)
    warm = problems(cache_path=cache)
    assert (
        cold
        == warm
        == [
            'catalog/b.yaml:2:38: products[0].sku: "TEE" is also declared in catalog/a.yaml:2:35 '
            "(declare each SKU once)"
        ]
    )


def test_files_with_problems_are_reported_again(write: Write, workdir: Path) -> None:
    cache = _cache(workdir)
    write("a.yaml", 'products:\n  - {handle: "Bad ", name: A}\n')
    assert len(problems(cache_path=cache)) == 1
    assert len(problems(cache_path=cache)) == 1


def test_image_changes_are_seen_through_the_cache(write: Write, workdir: Path) -> None:
    cache = _cache(workdir)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    write("i.png", png)
    write("a.yaml", "products:\n  - {handle: a, name: A, sku: A, images: [i.png]}\n")
    first = load_catalog(Path("catalog"), cache_path=cache).products[0].images
    write("i.png", png + b"more bytes")
    second = load_catalog(Path("catalog"), cache_path=cache).products[0].images
    assert first is not None and second is not None
    assert first[0].sha256 != second[0].sha256
    write("i.png", b"not an image at all")
    assert problems(cache_path=cache) == [
        'catalog/a.yaml:2:43: products[0].images[0]: image "i.png" is not a JPEG, PNG, GIF, TIFF '
        "or WebP file (the type is read from the file's content, not its name)"
    ]


def test_corrupt_or_foreign_caches_are_ignored(write: Write, workdir: Path) -> None:
    write("a.yaml", TEE)
    cache = _cache(workdir)
    expected = check().catalog
    cache.parent.mkdir()
    for junk in (
        b"",
        b"\x00\xff garbage",
        b'{"fingerprint": "from another version", "files": {}, "images": {}}',
        b"[1, 2, 3]",
        b'{"fingerprint": 1}',
    ):
        cache.write_bytes(junk)
        assert load_catalog(Path("catalog"), cache_path=cache) == expected
    # Written by this version, but with a flipped byte: the checksum catches it.
    load_catalog(Path("catalog"), cache_path=cache)
    blob = cache.read_bytes()
    cache.write_bytes(blob.replace(b'"Tee"', b'"Tex"'))
    assert load_catalog(Path("catalog"), cache_path=cache) == expected
    # Written by this version, signed, but with entries of the wrong shape.
    load_catalog(Path("catalog"), cache_path=cache)
    files = json.loads(cache.read_bytes().partition(b"\n")[2])["files"]
    _tamper(cache, json.dumps(files, separators=(",", ":")), json.dumps(dict.fromkeys(files, 1)))
    assert load_catalog(Path("catalog"), cache_path=cache) == expected


def test_the_cache_keeps_only_current_files(write: Write, workdir: Path) -> None:
    cache = _cache(workdir)
    write("a.yaml", TEE)
    load_catalog(Path("catalog"), cache_path=cache)
    for price in ("26.00", "27.00", "28.00"):
        write("a.yaml", TEE.replace("25.00", price))
        load_catalog(Path("catalog"), cache_path=cache)
    body = cache.read_bytes().partition(b"\n")[2]
    assert len(json.loads(body)["files"]) == 1


def test_an_unwritable_cache_only_costs_speed(write: Write, workdir: Path) -> None:
    write("a.yaml", TEE)
    blocker = workdir / "blocker"
    blocker.write_text("a file where the cache directory would be")
    catalog = load_catalog(Path("catalog"), cache_path=blocker / "parse-cache")
    assert catalog.products[0].handle == "tee"


def _aliased_descriptions(description_chars: int, products: int) -> str:
    lines = [
        "products:",
        f'  - {{handle: p0, name: P0, sku: S0, description: &d "{"x" * description_chars}"}}',
    ]
    lines += [
        f"  - {{handle: p{i}, name: P{i}, sku: S{i}, supplier_code: CODE-{i:08d}, description: *d}}"
        for i in range(1, products)
    ]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_of_long_text_is_refused_and_writes_no_cache_entry(
    write: Write, workdir: Path
) -> None:
    # 1.8 MB aliasing one 65,000-character description 20,000 times: 1.3 GB once expanded.
    path = write("a.yaml", _aliased_descriptions(65_000, 20_000))
    assert 1_500_000 < path.stat().st_size < 2_000_000
    cache = _cache(workdir)
    [problem] = problems(cache_path=cache)
    assert problem.startswith("catalog/a.yaml:")
    assert "aliases add more than 4 MB of text to this file" in problem
    assert not cache.exists() or cache.stat().st_size < 10_000


def test_the_cache_stays_a_small_multiple_of_the_files_it_caches(
    write: Write, workdir: Path
) -> None:
    # Allowed, but 50 aliases of 60,000 characters are 3 MB of text from a 64 KB file: it is
    # read again next time rather than cached at 45 times its size.
    aliased = write("aliased.yaml", _aliased_descriptions(60_000, 50))
    plain = write("plain.yaml", TEE)
    cache = _cache(workdir)
    first = load_catalog(Path("catalog"), cache_path=cache)
    assert sum(1 for p in first.products if p.description == "x" * 60_000) == 50
    size = cache.stat().st_size
    assert size < 4 * (aliased.stat().st_size + plain.stat().st_size)
    assert size < aliased.stat().st_size  # the aliased file is not in it at all
    again = load_catalog(Path("catalog"), cache_path=cache)
    assert again == first
