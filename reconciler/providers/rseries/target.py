"""Which R-Series account the commands talk to, from the environment (the only place this
provider reads it), or the embedded R-Series sandbox beside the state file.

- `LIGHTSPEED_BASE_URL`: the API host (default `https://api.lightspeedapp.com`; a served
  sandbox's URL, whose token endpoint is on the same host).
- `LIGHTSPEED_ACCOUNT_ID`: the account; discovered once from `Account.json` when unset.
- Credentials: an access token (`LIGHTSPEED_TOKEN`), or the refresh trio
  (`LIGHTSPEED_CLIENT_ID`, `LIGHTSPEED_CLIENT_SECRET`, `LIGHTSPEED_REFRESH_TOKEN`), or both.
  Rotated refresh tokens are kept in a token file of their own (`LIGHTSPEED_TOKEN_FILE`, else
  `rseries-tokens.json` beside the state file), never in the state file, which CI pushes to a
  branch.
- None of these set: the embedded R-Series sandbox (`rseries-sandbox.db` beside the state file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.errors import ConfigError

API_BASE = "https://api.lightspeedapp.com"
TOKEN_URL = "https://cloud.lightspeedapp.com/auth/oauth/token"
EMBEDDED_SANDBOX_DB = Path(".catalog/rseries-sandbox.db")
EMBEDDED_SANDBOX_TOKEN = "sandbox-token"
TOKEN_FILE_NAME = "rseries-tokens.json"
REFRESH_VARIABLES = ("LIGHTSPEED_CLIENT_ID", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN")
# What selects a real account; any of them set means "not the embedded sandbox" (a CI job's
# LIGHTSPEED_STORE names its store: without credentials it fails, it never falls back).
STORE_VARIABLES = (
    "LIGHTSPEED_STORE",
    "LIGHTSPEED_BASE_URL",
    "LIGHTSPEED_ACCOUNT_ID",
    "LIGHTSPEED_TOKEN",
)


@dataclass(frozen=True)
class RSeriesTarget:
    """An R-Series account. The tokens and the client secret are secrets: `repr` and `label`
    never hold them."""

    base_url: str
    label: str  # what plans, the ledger and messages name: the account and host
    account_id: str | None = None  # None: discovered from Account.json once
    access_token: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    token_file: Path | None = None  # where rotated pairs are kept (refresh flow only)
    sandbox_db: Path | None = None  # the embedded sandbox's file, when embedded
    platform: str = "rseries"

    def __repr__(self) -> str:  # keep every secret out of tracebacks and debug output
        return (
            f"RSeriesTarget(base_url={self.base_url!r}, label={self.label!r}, "
            f"account_id={self.account_id!r})"
        )

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint: Lightspeed's for its API, else on the same host."""
        return TOKEN_URL if self.base_url == API_BASE else f"{self.base_url}/auth/oauth/token"

    @property
    def refreshes(self) -> bool:
        return bool(self.refresh_token)

    def secrets(self) -> tuple[str, ...]:
        """The secrets it holds (for scrubbing messages)."""
        return tuple(s for s in (self.access_token, self.client_secret, self.refresh_token) if s)


def rseries_target(environ: Mapping[str, str], *, sandbox_db: Path) -> RSeriesTarget:
    """Resolve the environment into a target; with nothing set, the embedded sandbox kept in
    `sandbox_db`. Every misconfiguration is one sentence naming the variable to set."""
    get = {k: environ.get(k, "").strip() for k in (*STORE_VARIABLES, *REFRESH_VARIABLES)}
    base_url = get["LIGHTSPEED_BASE_URL"].rstrip("/")
    account = get["LIGHTSPEED_ACCOUNT_ID"]
    token = get["LIGHTSPEED_TOKEN"]
    trio = [get[k] for k in REFRESH_VARIABLES]
    if any(trio) and not all(trio):
        missing = [k for k, v in zip(REFRESH_VARIABLES, trio, strict=True) if not v]
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set all "
            "of LIGHTSPEED_CLIENT_ID, LIGHTSPEED_CLIENT_SECRET and LIGHTSPEED_REFRESH_TOKEN to "
            "refresh R-Series tokens, or none of them."
        )
    store = get["LIGHTSPEED_STORE"]
    if not store and not base_url and not account and not token and not any(trio):
        return RSeriesTarget(
            base_url="http://rseries-sandbox.invalid",
            label=f"embedded R-Series sandbox ({sandbox_db})",
            access_token=EMBEDDED_SANDBOX_TOKEN,
            sandbox_db=sandbox_db,
        )
    if not token and not any(trio):
        raise ConfigError(
            f"No R-Series credentials{f' for store {store}' if store else ''}: export "
            "LIGHTSPEED_TOKEN (an access token), or "
            "LIGHTSPEED_CLIENT_ID, LIGHTSPEED_CLIENT_SECRET and LIGHTSPEED_REFRESH_TOKEN "
            "(read from the environment only, never from a file)."
        )
    for name in ("LIGHTSPEED_TOKEN", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN"):
        _check_secret(name, get[name])
    if account and not account.isdigit():
        raise ConfigError(
            f"LIGHTSPEED_ACCOUNT_ID {account!r} is not an account number: use the digits "
            "Lightspeed shows (or unset it to discover the account from the token)."
        )
    if base_url and not _valid_url(base_url):
        raise ConfigError(
            f"LIGHTSPEED_BASE_URL {base_url!r} is not a valid http(s) URL: use e.g. "
            "http://127.0.0.1:8787 (paths /API/V3/... are appended)."
        )
    base_url = base_url or API_BASE
    host = urlsplit(base_url).netloc
    label = f"R-Series account {account} ({host})" if account else f"R-Series at {host}"
    token_file = environ.get("LIGHTSPEED_TOKEN_FILE", "").strip()
    return RSeriesTarget(
        base_url=base_url,
        label=label,
        account_id=account or None,
        access_token=token,
        client_id=trio[0],
        client_secret=trio[1],
        refresh_token=trio[2],
        token_file=(Path(token_file) if token_file else sandbox_db.parent / TOKEN_FILE_NAME)
        if all(trio)
        else None,
    )


def _check_secret(name: str, value: str) -> None:
    """A secret travels in a header or a form: ASCII, no spaces or control characters. Said
    before any request, without quoting it."""
    if not value:
        return
    if not value.isascii() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(
            f"{name} holds a space, line break, control or non-ASCII character, which no "
            "Lightspeed credential has: export it on one line, exactly as Lightspeed shows it."
        )


def _valid_url(url: str) -> bool:
    if not url.startswith(("http://", "https://")) or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname)
