"""The spec-only example client works against the sandbox unchanged, and `sandbox serve` starts
a server that says where it is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from reconciler.cli.sandbox import sandbox as sandbox_group
from reconciler.providers.xseries.sandbox import SandboxStore

from .builders import ok

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "xseries_client.py"


def _run_example(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_example_client_runs_unchanged_against_the_sandbox(
    sandbox: SandboxStore, sandbox_url: str
) -> None:
    first = _run_example(sandbox_url, "sandbox-token")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "family 'Example Tee': 3 variants" in first.stdout
    assert "is uploaded" in first.stdout
    assert "changed: EXAMPLE-TEE-L" in first.stdout

    with httpx.Client(base_url=sandbox_url, headers={"Authorization": "Bearer sandbox-token"}) as c:
        (large,) = ok(c.get("/api/2.0/products", params={"sku": "EXAMPLE-TEE-L"}))["data"]
        assert large["price_including_tax"] == 27.5
        (small,) = ok(c.get("/api/2.0/products", params={"sku": "EXAMPLE-TEE-S"}))["data"]
        assert len(small["images"]) == 1
    routes = sandbox.stats()["requests"]["by_route"]
    assert routes["POST /api/2.0/products"] == 1 and routes["PUT /api/2.1/products/{id}"] == 1

    # A second run finds the family through the 422 and creates nothing new.
    second = _run_example(
        env={"LIGHTSPEED_BASE_URL": sandbox_url, "LIGHTSPEED_TOKEN": "sandbox-token"}
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "family 'Example Tee': 3 variants" in second.stdout
    assert sandbox.stats()["requests"]["by_route"]["POST /api/2.0/products"] == 2


def test_example_client_needs_a_url_and_token() -> None:
    result = _run_example(env={"LIGHTSPEED_BASE_URL": "", "LIGHTSPEED_TOKEN": ""})
    assert result.returncode == 64 and "usage" in result.stderr


def test_serve_prints_its_url_and_token_and_serves(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from reconciler.cli.sandbox import sandbox; sandbox()",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "store.db"),
            "--token",
            "t0ken",
            "--rate-limit",
            "5/60",
            "--tax-exclusive",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        token_line = process.stderr.readline()
        base_url = banner.split(" at ")[1].split()[0]
        assert (
            base_url.startswith("http://127.0.0.1:") and token_line.strip() == "Bearer token: t0ken"
        )
        response = httpx.get(
            f"{base_url}/api/2.0/retailer", headers={"Authorization": "Bearer t0ken"}
        )
        assert response.json()["data"]["tax_exclusive"] is True
        assert response.headers["X-RateLimit-Limit"] == "5"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert (tmp_path / "store.db").exists()


def test_serve_rejects_a_bad_rate_limit() -> None:
    result = CliRunner().invoke(
        sandbox_group, ["serve", "--rate-limit", "lots", "--db", ":memory:"]
    )
    assert result.exit_code == 2 and "rate limit" in result.output
    help_text = CliRunner().invoke(sandbox_group, ["serve", "--help"]).output
    for flag in (
        "--host",
        "--port",
        "--db",
        "--token",
        "--registers",
        "--rate-limit",
        "--latency-ms",
        "--fault-rate",
        "--tax-exclusive",
        "--timeout-rate",
    ):
        assert flag in help_text
