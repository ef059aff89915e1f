"""How much `catalog import` costs the store and the laptop on 10,000 families / 50,000 variants.

Setup (not timed), shared with the plan benchmark: the generated benchmark catalog
(`bench.generate`) and a sandbox store file holding exactly that catalog, seeded through the
store's Python API and cached under bench/out. A copy of the store is served over a real socket
from this process with X-Series' rate limit (350 requests / 5 min).

Timed, each `catalog import` as a subprocess (interpreter start-up and imports included):

1. cold import: a fresh state file, so every object kind is read in full pages; the catalog is
   written and validated;
2. warm import: the same state file into a second directory: the change feed says nothing
   changed; the files must be byte-identical to the cold import's;
3. `catalog plan` of the imported catalog against the same store: only adoptions, no request
   estimated for apply (the round trip at scale).

Reported: requests by route (counted by the store), wall time and peak RSS of the imports, the
plan's summary. Targets (issue 7): reads paged, never one request per product: cold requests
<= ceil(variants / page size) + 10 (the refresh `catalog plan` makes); an adopt-only plan.

Run: `python -m bench import` (first run seeds the store, shared with `python -m bench plan`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import TARGETS_MISSED
from bench.plan_bench import OUT, TOKEN, seeded_store
from bench.validate_bench import ensure_catalog
from reconciler.providers.asgi import serve_in_thread
from reconciler.providers.xseries.client import MAX_PAGE_SIZE
from reconciler.providers.xseries.sandbox import SandboxStore


def digest(directory: Path) -> str:
    """One hash over every file's name and bytes: equal digests mean byte-identical trees."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def catalog_command(url: str, state: Path, *args: str) -> tuple[float, str, str]:
    """Run `catalog --state STATE ARGS...` against the store at `url`; (wall s, stdout, stderr)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))},
        "LIGHTSPEED_BASE_URL": url,
        "LIGHTSPEED_TOKEN": TOKEN,
        "NO_COLOR": "1",
    }
    command = [sys.executable, "-m", "reconciler", "--state", str(state), *args]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return wall, result.stdout, result.stderr


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench import", description=__doc__)
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    catalog_dir = ensure_catalog(
        OUT / f"catalog-{args.families}", families=args.families, files=args.files
    )
    store_file = seeded_store(catalog_dir, families=args.families)
    figures: dict[str, Any] = {"families": args.families}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        live_file = work / "store.db"
        shutil.copyfile(store_file, live_file)
        store = SandboxStore(live_file, token=TOKEN)  # X-Series rate limit
        state = work / "state" / "state.db"
        with serve_in_thread(store) as url:
            runs: dict[str, Any] = {}
            for name in ("cold", "warm"):
                store.reset_stats()
                wall, _, err = catalog_command(url, state, "import", "--out", str(work / name))
                requests = store.stats()["requests"]
                runs[name] = {
                    "requests": requests["total"],
                    "by_route": requests["by_route"],
                    "wall_s": round(wall, 2),
                    "summary": next(
                        (line for line in err.splitlines() if line.startswith("Imported")), ""
                    ),
                }
            store.reset_stats()
            plan_wall, plan_out, _ = catalog_command(
                url, state, "--catalog", str(work / "cold"), "plan", "--format", "json"
            )
            plan = json.loads(plan_out)
        store.close()
        same = digest(work / "cold") == digest(work / "warm")
        files = sum(1 for p in (work / "cold").rglob("*.yaml"))
    variants = 5 * args.families  # the generator's families have five variants each
    # Products in full pages plus one empty page that confirms the end; brands, suppliers and
    # tags one page and one empty page each; attributes, categories and the retailer one each.
    target = -(-variants // MAX_PAGE_SIZE) + 1 + 3 * 2 + 3
    figures.update(
        {
            "variants": variants,
            "files_written": files,
            "cold_import": runs["cold"],
            "warm_import": runs["warm"],
            "byte_identical": same,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "plan_after_import": {
                "summary": plan["summary"],
                "apply_requests_estimated": plan["estimate"]["requests"],
                "wall_s": round(plan_wall, 2),
            },
            "target_cold_requests": target,
        }
    )
    ok = (
        same
        and runs["cold"]["requests"] <= target
        and set(plan["summary"]) <= {"adopt"}
        and plan["estimate"]["requests"] == 0
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"import of {args.families:,} families / {variants:,} variants into {files} files\n"
            f"  cold: {runs['cold']['requests']} requests (target <= {target}), "
            f"{runs['cold']['wall_s']} s\n"
            f"  warm: {runs['warm']['requests']} requests, {runs['warm']['wall_s']} s; "
            f"byte-identical: {same}\n"
            f"  peak RSS {figures['peak_rss_mb']} MB\n"
            f"  plan after import: {plan['summary']}, "
            f"{plan['estimate']['requests']} apply requests, {round(plan_wall, 2)} s\n"
            f"  {'OK' if ok else 'FAILED'}"
        )
    return 0 if ok else TARGETS_MISSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
