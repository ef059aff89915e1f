"""`catalog sandbox serve`: a sandbox store (X-Series, or R-Series with `--platform rseries`)
over HTTP, for demos and rehearsals. Each platform's store comes from the registry
(`reconciler.providers.sandbox`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler import providers

EMBEDDED_SANDBOX_TOKEN = "sandbox-token"  # the bearer token every sandbox starts with
# Options only one platform's store takes, by the platform that takes them.
ONLY = {
    "xseries": ("tax_exclusive", "image_delay"),
    "rseries": ("refresh_token", "client_id", "client_secret"),
}


def _default_dbs() -> str:
    return ", ".join(
        f"{providers.sandbox(name).title}: {providers.sandbox(name).default_db}"
        for name in sorted(providers.SANDBOXES, reverse=True)
    )


def _rate_limit(platform: str, value: str | None) -> str:
    """The --rate-limit value checked in the platform's own terms (the same `A/B` text means
    requests per window on X-Series and bucket size per drip rate on R-Series)."""
    value = value or platform
    try:
        providers.sandbox(platform).check_rate_limit(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--rate-limit'") from None
    return value


@click.group()
def sandbox() -> None:
    """A local Lightspeed store (the sandbox) for tests, demos and rehearsals."""


@sandbox.command()
@click.option(
    "--platform",
    type=click.Choice(sorted(providers.REGISTRY, reverse=True)),
    default="xseries",
    show_default=True,
    help="Which Lightspeed API the sandbox speaks.",
)
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
    default=None,
    help=f"SQLite file holding the store's data; ':memory:' for a throwaway store "
    f"[default: {_default_dbs()}].",
)
@click.option(
    "--token",
    default=EMBEDDED_SANDBOX_TOKEN,
    show_default=True,
    help="Bearer token clients must send (R-Series: the access token valid from the start).",
)
@click.option(
    "--refresh-token",
    default="sandbox-refresh-token",
    show_default=True,
    help="R-Series: the refresh token /auth/oauth/token accepts first (it rotates).",
)
@click.option(
    "--client-id",
    default="sandbox-client",
    show_default=True,
    help="R-Series: the OAuth client id the token endpoint accepts.",
)
@click.option(
    "--client-secret",
    default="sandbox-secret",
    show_default=True,
    help="R-Series: the OAuth client secret the token endpoint accepts.",
)
@click.option(
    "--registers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Registers; X-Series allows 300 x registers + 50 requests per 5 minutes, R-Series "
    "a bucket of 90 (+10 per extra register) draining 1/s (+0.5).",
)
@click.option(
    "--rate-limit",
    default=None,
    help="X-Series: xseries (default), off, or N/SECONDS (e.g. 20/1). R-Series: rseries "
    "(default), off, or SIZE/DRIPS_PER_SECOND (e.g. 90/1).",
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
@click.pass_context
def serve(
    ctx: click.Context,
    platform: str,
    host: str,
    port: int,
    db_path: str | None,
    token: str,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    registers: int,
    rate_limit: str | None,
    latency_ms: int,
    fault_rate: float,
    timeout_rate: float,
    burst_429_rate: float,
    image_delay: float,
    seed: int | None,
    tax_exclusive: bool,
) -> None:
    """Serve the sandbox store over HTTP until Ctrl-C.

    Clients use the printed base URL (X-Series: paths /api/2.0/... and /api/2.1/... are
    appended; R-Series: /API/V3/..., with the OAuth token endpoint at /auth/oauth/token) and
    the printed bearer token. Fault settings can be changed while running with
    PUT /_sandbox/faults; GET /_sandbox/stats counts the requests.
    """
    limit = _rate_limit(platform, rate_limit)
    source = ctx.get_parameter_source
    for other, names in ONLY.items():
        for name in names if other != platform else ():
            if source(name) == click.core.ParameterSource.COMMANDLINE:
                flag = "--" + name.replace("_", "-")
                title = providers.sandbox(other).title
                raise click.UsageError(f"{flag} applies to the {title} sandbox only.")
    sandbox_store = providers.sandbox(platform)
    path = db_path or str(sandbox_store.default_db)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "registers": registers,
        "rate_limit": limit,
        "latency_ms": latency_ms,
        "fault_rate": fault_rate,
        "timeout_rate": timeout_rate,
        "burst_429_rate": burst_429_rate,
        "seed": seed,
    }
    if platform == "rseries":
        options.update(
            refresh_token=refresh_token, client_id=client_id, client_secret=client_secret
        )
    else:
        options.update(tax_exclusive=tax_exclusive, image_processing_seconds=image_delay)
    store = sandbox_store.open(path, token=token, **options)

    def announce(base_url: str) -> None:
        click.echo(
            f"Sandbox {sandbox_store.title} store serving at {base_url} (data: {path})", err=True
        )
        # The sandbox's credentials are not secrets: printing them is how a newcomer connects.
        click.echo(f"Bearer token: {token}", err=True)
        for line in sandbox_store.connect_lines(store):
            click.echo(line, err=True)

    try:
        sandbox_store.serve_forever(store, host=host, port=port, on_start=announce)
    finally:
        store.close()
