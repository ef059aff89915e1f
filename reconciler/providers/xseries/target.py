"""Which X-Series store the commands talk to: LIGHTSPEED_STORE / LIGHTSPEED_BASE_URL /
LIGHTSPEED_TOKEN from the environment, or the embedded sandbox store beside the state file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    pass

EMBEDDED_SANDBOX_DB = Path(".catalog/sandbox.db")
EMBEDDED_SANDBOX_TOKEN = "sandbox-token"


@dataclass(frozen=True)
class StoreTarget:
    """Which store the commands talk to. `token` is a secret: never print or store it."""

    base_url: str
    token: str
    label: str  # what we may show people: the domain prefix or base URL, never the token
    sandbox_db: Path | None = None  # the embedded sandbox store's file, when embedded
    platform: str = "xseries"  # the provider that reaches it (`reconciler.providers`)

    def __repr__(self) -> str:  # keep the token out of tracebacks and debug output
        return f"StoreTarget(base_url={self.base_url!r}, label={self.label!r})"


def store_target(
    environ: Mapping[str, str], *, sandbox_db: Path = EMBEDDED_SANDBOX_DB
) -> StoreTarget:
    """Resolve LIGHTSPEED_STORE / LIGHTSPEED_BASE_URL / LIGHTSPEED_TOKEN into a target.

    With none of them set, the embedded sandbox store kept in `sandbox_db` is used.
    """
    store = environ.get("LIGHTSPEED_STORE", "").strip()
    base_url = environ.get("LIGHTSPEED_BASE_URL", "").strip().rstrip("/")
    token = environ.get("LIGHTSPEED_TOKEN", "").strip()
    if not store and not base_url:
        if token:
            raise ConfigError(
                "LIGHTSPEED_TOKEN is set but no store is: set LIGHTSPEED_STORE to the store's "
                "domain prefix (or LIGHTSPEED_BASE_URL), or unset the token to use the sandbox."
            )
        return StoreTarget(
            base_url="http://sandbox.invalid",
            token=EMBEDDED_SANDBOX_TOKEN,
            label=f"embedded sandbox ({sandbox_db})",
            sandbox_db=sandbox_db,
        )
    if not token:
        raise ConfigError(
            "LIGHTSPEED_TOKEN is not set: export a personal token for the store "
            f"{store or base_url} (it is read from the environment only, never from a file)."
        )
    _check_token(token)
    if base_url:
        if not base_url.startswith(("http://", "https://")) or not _valid_url(base_url):
            raise ConfigError(
                f"LIGHTSPEED_BASE_URL {base_url!r} is not a valid http(s) URL: use e.g. "
                "http://127.0.0.1:8787 or http://[::1]:8787 (paths /api/2.0/... are appended)."
            )
        return StoreTarget(base_url=base_url, token=token, label=store or base_url)
    if not store.replace("-", "").isalnum():
        raise ConfigError(
            f"LIGHTSPEED_STORE {store!r} is not a domain prefix: use the part before "
            ".retail.lightspeed.app, e.g. 'acme'."
        )
    return StoreTarget(base_url=f"https://{store}.retail.lightspeed.app", token=token, label=store)


def _check_token(token: str) -> None:
    """A token travels in an HTTP header: ASCII, no spaces or control characters. Said before
    any request, without quoting the token."""
    if not token.isascii():
        raise ConfigError(
            "LIGHTSPEED_TOKEN holds a non-ASCII character, which no Lightspeed token has: copy "
            "the token again (Setup > Personal tokens) and export it without it."
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in token):
        raise ConfigError(
            "LIGHTSPEED_TOKEN holds a line break, space or control character inside it: "
            "export the token on one line, exactly as Lightspeed shows it."
        )


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname) and not any(ch.isspace() for ch in url)
