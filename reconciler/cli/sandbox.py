"""`catalog sandbox serve`: the sandbox X-Series store over HTTP, for demos and rehearsals."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.common import EMBEDDED_SANDBOX_DB, EMBEDDED_SANDBOX_TOKEN
from reconciler.sandbox import RateLimit, SandboxStore, serve_forever


def _rate_limit(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        RateLimit.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


@click.group()
def sandbox() -> None:
    """A local Lightspeed X-Series store (the sandbox) for tests, demos and rehearsals."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--db",
    "db_path",
    default=str(EMBEDDED_SANDBOX_DB),
    show_default=True,
    help="SQLite file holding the store's data; ':memory:' for a throwaway store.",
)
@click.option(
    "--token",
    default=EMBEDDED_SANDBOX_TOKEN,
    show_default=True,
    help="Bearer token clients must send.",
)
@click.option(
    "--registers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Registers; the default rate limit is 300 x registers + 50 per 5 minutes.",
)
@click.option(
    "--rate-limit",
    default="xseries",
    show_default=True,
    callback=_rate_limit,
    help="xseries, off, or N/SECONDS (e.g. 20/1).",
)
@click.option(
    "--latency-ms", default=0, show_default=True, type=click.IntRange(min=0), help="Added latency."
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests answered 500, 502 or 503 (nothing committed).",
)
@click.option(
    "--timeout-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of writes committed whose response is then held back until the client gives up.",
)
@click.option(
    "--burst-429-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Chance per request of starting a one-second burst of 429 answers.",
)
@click.option(
    "--image-delay",
    default=0.2,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds an uploaded image stays 'processing'.",
)
@click.option("--seed", type=int, default=None, help="Seed for reproducible faults.")
@click.option("--tax-exclusive", is_flag=True, help="A tax-exclusive store (default: inclusive).")
def serve(
    host: str,
    port: int,
    db_path: str,
    token: str,
    registers: int,
    rate_limit: str,
    latency_ms: int,
    fault_rate: float,
    timeout_rate: float,
    burst_429_rate: float,
    image_delay: float,
    seed: int | None,
    tax_exclusive: bool,
) -> None:
    """Serve the sandbox store over HTTP until Ctrl-C.

    Clients use the printed base URL (paths /api/2.0/... and /api/2.1/... are appended) and
    the printed bearer token. Fault settings can be changed while running with
    PUT /_sandbox/faults; GET /_sandbox/stats counts the requests.
    """
    if db_path != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    store = SandboxStore(
        db_path,
        token=token,
        tax_exclusive=tax_exclusive,
        registers=registers,
        rate_limit=rate_limit,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        timeout_rate=timeout_rate,
        burst_429_rate=burst_429_rate,
        image_processing_seconds=image_delay,
        seed=seed,
    )

    def announce(base_url: str) -> None:
        click.echo(f"Sandbox X-Series store serving at {base_url} (data: {db_path})", err=True)
        # The sandbox token is not a secret: printing it is how a newcomer connects.
        click.echo(f"Bearer token: {token}", err=True)

    try:
        serve_forever(store, host=host, port=port, on_start=announce)
    finally:
        store.close()
