"""R-Series pacing benchmark: a mixed workload through the leaky bucket, against the R-Series
sandbox served over a real socket from a process of its own (`catalog sandbox serve
--platform rseries`), with the real bucket (90 units, draining 1/s) unless told otherwise.

The workload, shared by `--threads` threads through one client: Category creates (10 units
each), Item creates with a price (1.5 units: one nested entity), and queries loading two
relations (1.6 units). The sandbox counts what it charged (`/_sandbox/stats` `cost`); the bound
is (total cost - bucket size) / drip rate. Reported: requests, cost, wall time vs the bound, and
429 answers drawn. Targets: wall <= 1.1 x bound, no 429.

Run: `python -m bench rseries_pacing` (about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import TARGETS_MISSED
from reconciler.providers.rseries.client import client_from_environment
from reconciler.providers.rseries.sandbox import Bucket

TOKEN = "bench-token"
TARGET_RATIO = 1.1


@contextmanager
def served(bucket: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "sandbox",
            "serve",
            "--platform",
            "rseries",
            "--port",
            "0",
            "--db",
            ":memory:",
            "--token",
            TOKEN,
            "--rate-limit",
            bucket,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        yield banner.split(" at ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rseries_pacing", description=__doc__)
    parser.add_argument("--bucket", default="90/1", help="SIZE/DRIPS_PER_SECOND (default 90/1)")
    parser.add_argument("--categories", type=int, default=5)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    bucket = Bucket.parse(args.bucket)
    assert bucket is not None, "the benchmark needs a bucket"
    with served(args.bucket) as url, tempfile.TemporaryDirectory() as tmp:
        environ = {"LIGHTSPEED_BASE_URL": url, "LIGHTSPEED_TOKEN": TOKEN}
        with client_from_environment(environ, token_file=Path(tmp) / "t.json") as client:
            client.account_id()  # discovered before the clock starts
            httpx.post(f"{url}/_sandbox/reset")  # an empty bucket, zero counts
            jobs: list[Callable[[], object]] = []
            jobs += [
                (lambda n=n: client.create("Category", {"name": f"Category {n}"}))
                for n in range(args.categories)
            ]
            jobs += [
                (
                    lambda n=n: client.create(
                        "Item",
                        {
                            "description": f"Item {n}",
                            "Prices": {"ItemPrice": [{"amount": "9.5", "useTypeID": "1"}]},
                        },
                    )
                )
                for n in range(args.items)
            ]
            jobs += [
                (
                    lambda: client.query(
                        "Item", {"itemID": "1"}, load_relations=["ItemShops", "Category"]
                    )
                )
                for _ in range(args.queries)
            ]
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        if not jobs:
                            return
                        job = jobs.pop(0)
                    job()

            started = time.monotonic()
            threads = [threading.Thread(target=worker) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
        stats = httpx.get(f"{url}/_sandbox/stats").json()
    cost = float(stats["cost"])
    bound = max(0.0, (cost - bucket.size) / bucket.drip_per_second)
    ratio = wall / bound if bound else float("nan")
    print(
        f"bucket {args.bucket}: {stats['requests']['total']} requests, {cost:g} units, "
        f"{stats['rate_limited']} x 429, {args.threads} threads"
    )
    print(f"wall {wall:.1f} s vs bound {bound:.1f} s: {ratio:.3f} x (target <= {TARGET_RATIO} x)")
    ok = stats["rate_limited"] == 0 and (not bound or ratio <= TARGET_RATIO)
    return 0 if ok else TARGETS_MISSED
