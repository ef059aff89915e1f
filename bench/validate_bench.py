"""How fast `catalog validate` is on 10,000 families / 50,000 variants in 20 files.

Measured in one run, best of `--repeat`:
- the wall time and peak RSS of `catalog validate` as a subprocess (interpreter start-up and
  imports included), cold (`--no-cache`) and warm (every file unchanged since the last run);
- the wall time of merely parsing the same files with PyYAML's C loader, in this process
  (`yaml.load(text, Loader=yaml.CSafeLoader)`, no start-up cost), which is the yardstick.
Targets (issue 3): cold validate <= 1.8 x the bare parse, peak RSS <= 500 MB.
The bare parse with the garbage collector paused is reported too, as a stricter yardstick.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench import TARGETS_MISSED
from bench.generate import generate_catalog

TARGET_RATIO = 1.8
TARGET_RSS_MB = 500.0
DEFAULT_OUT = Path(__file__).parent / "out" / "catalog-10000"


def ensure_catalog(out_dir: Path, *, families: int, files: int) -> Path:
    """Generate the catalog once; reuse it while the parameters and generator are unchanged."""
    stamp = out_dir / ".params.json"
    want = {
        "families": families,
        "files": files,
        "generator": Path(__file__).with_name("generate.py").read_text(),
    }
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return out_dir
    print(f"generating {families:,} families in {files} files under {out_dir} ...", file=sys.stderr)
    generate_catalog(out_dir, families=families, files=files)
    stamp.write_text(json.dumps(want))
    return out_dir


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def bare_parse(paths: list[Path], *, pause_gc: bool) -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if pause_gc:
        gc.disable()
    try:
        for path in paths:
            yaml.load(path.read_bytes(), Loader=loader)
    finally:
        gc.enable()


def run_validate(catalog: Path, state: Path, *, cache: bool) -> None:
    command = [sys.executable, "-m", "reconciler", "--catalog", str(catalog)]
    command += ["--state", str(state), "validate"] + ([] if cache else ["--no-cache"])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"catalog validate failed ({result.returncode}):\n{result.stdout}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench validate", description=__doc__)
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="generated catalog dir")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    catalog = ensure_catalog(args.out, families=args.families, files=args.files)
    paths = sorted(catalog.glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.db"
        # Validate first: RUSAGE_CHILDREN's peak RSS then covers only validate runs.
        cold = best_of(args.repeat, lambda: run_validate(catalog, state, cache=False))
        run_validate(catalog, state, cache=True)  # fill the cache
        warm = best_of(args.repeat, lambda: run_validate(catalog, state, cache=True))
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    parse = best_of(args.repeat, lambda: bare_parse(paths, pause_gc=False))
    parse_no_gc = best_of(args.repeat, lambda: bare_parse(paths, pause_gc=True))

    figures = {
        "families": args.families,
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "validate_cold_s": round(cold, 3),
        "validate_warm_s": round(warm, 3),
        "bare_parse_s": round(parse, 3),
        "bare_parse_gc_paused_s": round(parse_no_gc, 3),
        "ratio_cold": round(cold / parse, 3),
        "ratio_cold_vs_gc_paused": round(cold / parse_no_gc, 3),
        "ratio_warm": round(warm / parse, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "targets": {"ratio_cold": TARGET_RATIO, "peak_rss_mb": TARGET_RSS_MB},
    }
    met = figures["ratio_cold"] <= TARGET_RATIO and peak_mb <= TARGET_RSS_MB
    figures["targets_met"] = met
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        mb = figures["bytes"] / 1e6
        print(f"catalog: {args.families:,} families, {len(paths)} files, {mb:.1f} MB of YAML")
        print(f"bare parse (PyYAML C loader)        {parse:7.3f} s")
        print(f"bare parse, garbage collector paused {parse_no_gc:6.3f} s")
        print(
            f"catalog validate, cold              {cold:7.3f} s  = {cold / parse:.2f} x bare parse "
            f"({cold / parse_no_gc:.2f} x with GC paused); target <= {TARGET_RATIO} x"
        )
        print(
            f"catalog validate, warm cache        {warm:7.3f} s  = {warm / parse:.2f} x bare parse"
        )
        rss_target = f"target <= {TARGET_RSS_MB:.0f} MB"
        print(f"peak RSS of catalog validate        {peak_mb:7.1f} MB; {rss_target}")
        print("targets met" if met else "TARGETS MISSED")
    return 0 if met else TARGETS_MISSED
