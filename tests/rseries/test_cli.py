"""The commands end to end with LIGHTSPEED_PLATFORM=rseries, as a person types them: against the
embedded R-Series sandbox (in process, beside the state file) and against
`catalog sandbox serve --platform rseries` over a real socket with the OAuth refresh flow.
validate, plan (every format, saved plans), apply, re-plan empty, import round trip with zero
writes, history, the `catalog ci` steps, and no duplicate on a re-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.rseries.auth import OAuth
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from reconciler.state.ledger import Ledger

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"
SECRETS = ("sandbox-secret", "sandbox-refresh-token")


class Cli:
    """`python -m reconciler` in a directory of its own, R-Series selected."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.tmp = tmp
        self.catalog = tmp / "catalog"
        shutil.copytree(EXAMPLE, self.catalog)
        self.state = tmp / ".catalog" / "state.db"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))
        }
        self.env.update(LIGHTSPEED_PLATFORM="rseries", NO_COLOR="1", **env)

    def run(self, *args: str, catalog: Path | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "reconciler", "--catalog", str(catalog or self.catalog)]
        return subprocess.run(
            [*argv, "--state", str(self.state), *args],
            env=self.env,
            cwd=self.tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def ok(self, *args: str, catalog: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = self.run(*args, catalog=catalog)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


def counts(client: RSeriesClient) -> dict[str, int]:
    """Records of each kind the store holds, archived ones too."""
    every = {"archived": "true"}
    return {
        kind: client.count(kind, every if kind in {"Item", "ItemMatrix", "Vendor"} else {})
        for kind in ("Item", "ItemMatrix", "Manufacturer", "Vendor", "Category", "Tag", "Image")
    }


@pytest.fixture
def embedded(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def held(cli: Cli) -> dict[str, int]:
    """What the embedded sandbox beside `cli`'s state file holds, counted through its API."""
    store = RSeriesStore(cli.state.parent / "rseries-sandbox.db", token="sandbox-token")
    auth = OAuth(token_url="http://r.invalid/auth/oauth/token", access_token="sandbox-token")
    try:
        with RSeriesClient(
            "http://r.invalid", auth=auth, transport=SandboxTransport(store)
        ) as client:
            return counts(client)
    finally:
        store.close()


def test_the_embedded_sandbox_plan_apply_replan_and_no_duplicate(embedded: Cli) -> None:
    checked = embedded.ok("validate", "--format", "json")
    assert json.loads(checked.stdout)["valid"] is True
    cold = embedded.ok("plan", "--format", "json")
    assert "embedded R-Series sandbox" in cold.stderr
    planned = json.loads(cold.stdout)
    assert planned["provider"] == "rseries" and planned["estimate"]["units"] > 0
    assert planned["estimate"]["rate_limit"] == 90  # the published bucket until one is reported
    done = embedded.ok("apply", "--auto-approve", "--format", "json")
    report = json.loads(done.stdout)
    assert report["outcome"] == "applied" and report["counts"]["failed"] == 0
    assert report["requests"]["writes"] == planned["estimate"]["requests"]
    again = embedded.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    first = held(embedded)
    assert first["ItemMatrix"] == len(list(_families(embedded.catalog)))
    rerun = embedded.ok("apply", "--auto-approve")
    assert "No changes" in rerun.stdout
    assert held(embedded) == first  # nothing made twice


def _families(catalog: Path) -> Iterator[str]:
    import yaml

    for path in sorted(catalog.glob("*.yaml")):
        for p in (yaml.safe_load(path.read_text()) or {}).get("products") or []:
            if p.get("options"):
                yield str(p["handle"])


def test_a_saved_plan_history_and_the_ci_steps(embedded: Cli) -> None:
    out = embedded.tmp / "plan.json"
    embedded.ok("plan", "--out", str(out), "--format", "markdown")
    shown = json.loads(embedded.ok("ci", "show-plan", str(out), "--format", "json").stdout)
    assert shown["provider"] == "rseries" and "units" in shown["estimate"]
    embedded.ok("apply", str(out))
    history = embedded.ok("history", "--format", "json").stdout
    assert '"applied"' in history


def test_import_round_trip_plans_no_change(embedded: Cli, tmp_path: Path) -> None:
    embedded.ok("apply", "--auto-approve")
    imported = tmp_path / "imported"
    embedded.ok("import", "--out", str(imported))
    fresh = Cli(tmp_path / "second")
    shutil.rmtree(fresh.catalog)
    shutil.copytree(imported, fresh.catalog)
    # The same store (its file), a state of its own: nothing to write, everything adopted.
    fresh.state.parent.mkdir(parents=True)
    shutil.copy(embedded.state.parent / "rseries-sandbox.db", fresh.state.parent)
    plan = json.loads(fresh.ok("plan", "--format", "json").stdout)
    assert plan["estimate"]["requests"] == 0
    assert all(c["action"] == "adopt" for c in plan["changes"]), plan["changes"][:3]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
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
            str(tmp_path / "served.db"),
            "--rate-limit",
            "off",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        yield banner.split(" at ")[1].split()[0]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def test_over_a_socket_with_the_refresh_flow(served: str, tmp_path: Path) -> None:
    cli = Cli(
        tmp_path,
        LIGHTSPEED_BASE_URL=served,
        LIGHTSPEED_CLIENT_ID="sandbox-client",
        LIGHTSPEED_CLIENT_SECRET="sandbox-secret",
        LIGHTSPEED_REFRESH_TOKEN="sandbox-refresh-token",
    )
    planned = json.loads(cli.ok("plan", "--format", "json").stdout)
    httpx.post(f"{served}/_sandbox/stats/reset")
    cli.ok("apply", "--auto-approve")
    stats = httpx.get(f"{served}/_sandbox/stats").json()
    by_method = stats["requests"]["by_method"]
    assert (
        sum(by_method.get(m, 0) for m in ("POST", "PUT", "DELETE"))
        == planned["estimate"]["requests"]
    )
    assert cli.run("plan", "--detailed-exitcode").returncode == 0
    tokens = tmp_path / ".catalog" / "rseries-tokens.json"
    assert tokens.exists() and oct(tokens.stat().st_mode & 0o777) == "0o600"
    state = cli.state.read_bytes()
    for secret in (*SECRETS, json.loads(tokens.read_text())["access_token"]):
        assert secret.encode() not in state


def test_a_stale_saved_plan_is_refused_and_changes_nothing(embedded: Cli) -> None:
    """A plan reviewed, then the product edited in the back office before it is applied: apply
    refuses the saved plan, names the product, records the refusal and writes nothing."""
    embedded.ok("apply", "--auto-approve")
    yaml_file = embedded.catalog / "apparel.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("price: 25.00", "price: 26.00", 1))
    saved = embedded.tmp / "plan.json"
    embedded.ok("plan", "--out", str(saved))
    touched = next(c for c in json.loads(saved.read_text())["changes"] if c["remote_id"])
    time.sleep(1.1)  # R-Series time stamps have one-second resolution
    store = RSeriesStore(embedded.state.parent / "rseries-sandbox.db", token="sandbox-token")
    auth = OAuth(token_url="http://r.invalid/auth/oauth/token", access_token="sandbox-token")
    try:
        with RSeriesClient(
            "http://r.invalid", auth=auth, transport=SandboxTransport(store)
        ) as client:
            matrix = client.read("ItemMatrix", touched["remote_id"])
            client.update(
                "ItemMatrix", touched["remote_id"], {"description": f"{matrix['description']} (x)"}
            )
            family = {"itemMatrixID": str(touched["remote_id"])}
            before = (counts(client), client.query("Item", family))
            refused = embedded.run("apply", str(saved))
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "stale" in refused.stderr and touched["key"] in refused.stderr
            assert (counts(client), client.query("Item", family)) == before
    finally:
        store.close()
    with State(embedded.state) as state:
        assert Ledger(state).runs()[0].outcome == "refused"
