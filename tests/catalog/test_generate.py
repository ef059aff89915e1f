"""The benchmark generator: deterministic, valid, and its images decodable in format."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
import yaml

from bench.generate import generate_catalog, jpeg_bytes, png_bytes
from reconciler.catalog import validate_directory
from reconciler.rules import image_type


def test_generated_catalog_is_valid_and_deterministic(tmp_path: Path) -> None:
    generate_catalog(tmp_path / "a", families=30, files=4)
    generate_catalog(tmp_path / "b", families=30, files=4)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.yaml"))
    assert names == ["catalog.yaml", "products-01.yaml", "products-02.yaml", "products-03.yaml"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    report = validate_directory(tmp_path / "a")
    assert report.problems == []
    assert (report.products, report.variants) == (30, 150)


def test_a_smaller_run_leaves_no_old_files(tmp_path: Path) -> None:
    generate_catalog(tmp_path, families=10, files=5)
    generate_catalog(tmp_path, families=10, files=2)
    assert len(list(tmp_path.glob("*.yaml"))) == 2


def test_png_is_well_formed() -> None:
    data = png_bytes(3, 2, lambda x, y: (x * 80, y * 100, 7))
    assert image_type(data[:12]) == "png"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (3, 2)
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    rows = zlib.decompress(data[idat + 4 : idat + 4 + length])
    assert (
        rows
        == b"\x00\x00\x00\x07\x50\x00\x07\xa0\x00\x07" + b"\x00\x00\x64\x07\x50\x64\x07\xa0\x64\x07"
    )


def test_jpeg_has_the_baseline_structure() -> None:
    data = jpeg_bytes(16, 8, lambda bx, by: (255, 0, 0) if bx else (0, 0, 255))
    assert image_type(data[:12]) == "jpeg"
    assert data.endswith(b"\xff\xd9")
    sof = data.index(b"\xff\xc0")
    assert struct.unpack(">HH", data[sof + 5 : sof + 9]) == (8, 16)


def test_hooks_file_offers_catalog_validate() -> None:
    hooks = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    )
    [hook] = hooks
    assert hook["id"] == "catalog-validate"
    assert (hook["entry"], hook["args"], hook["pass_filenames"]) == ("catalog", ["validate"], False)


def test_bench_dispatches_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import available, main

    assert "validate" in available()
    assert main(["no-such-bench"]) == 64
    assert "available: " in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "benchmarks: " in capsys.readouterr().out
