"""What every command shares: the resolved options, the store selection and the consoles."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.console import Console

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.providers.xseries.client import Client

EMBEDDED_SANDBOX_DB = Path(".catalog/sandbox.db")
EMBEDDED_SANDBOX_TOKEN = "sandbox-token"


def stderr_console(*, color: bool = False) -> Console:
    """Progress and notices go to stderr, so stdout stays one clean document.

    Everything printed holds user text (names, descriptions, CSV messages such as
    `products.csv:100:`), so nothing is ever read as Rich markup, an emoji code or a highlight.
    """
    return Console(
        stderr=True,
        no_color=not color,
        highlight=False,
        soft_wrap=True,
        markup=False,
        emoji=False,
    )


def use_color(choice: str, *, environ: Mapping[str, str], isatty: bool) -> bool:
    """Decide colour once: --color always|never wins, then NO_COLOR, then whether it is a TTY."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return isatty and "NO_COLOR" not in environ


# Environment variables holding secrets: their values never reach output, files or the ledger.
SECRET_VARIABLES = (
    "LIGHTSPEED_TOKEN",
    "LIGHTSPEED_CLIENT_SECRET",
    "LIGHTSPEED_REFRESH_TOKEN",
    "GITHUB_TOKEN",
)


def env_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values set in `environ` (for `reconciler.errors.redact`)."""
    return tuple(v.strip() for k in SECRET_VARIABLES if (v := environ.get(k, "")).strip())


@dataclass(frozen=True)
class StoreTarget:
    """Which store the commands talk to. `token` is a secret: never print or store it."""

    base_url: str
    token: str
    label: str  # what we may show people: the domain prefix or base URL, never the token
    sandbox_db: Path | None = None  # the embedded sandbox store's file, when embedded

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


@dataclass(frozen=True)
class Context:
    """The group's options, resolved once and handed to every command."""

    catalog_dir: Path
    state_path: Path
    color_choice: str
    debug: bool
    environ: Mapping[str, str]

    @staticmethod
    def create(*, catalog_dir: str, state_path: str, color: str, debug: bool) -> Context:
        return Context(
            catalog_dir=Path(catalog_dir),
            state_path=Path(state_path),
            color_choice=color,
            debug=debug,
            environ=dict(os.environ),
        )

    def target(self) -> StoreTarget:
        """The store the environment selects; the embedded sandbox sits beside the state file."""
        return store_target(self.environ, sandbox_db=self.state_path.parent / "sandbox.db")

    def color(self, *, stream_isatty: bool) -> bool:
        return use_color(self.color_choice, environ=self.environ, isatty=stream_isatty)


def connect(target: StoreTarget, *, console: Console | None = None, **options: Any) -> Client:
    """A client for the target store; `options` go to `Client` (timeouts, pacing, ...).

    For the embedded sandbox (`target.sandbox_db`, beside the state file) the store is served
    in process, and that is said in one line on stderr.
    """
    from reconciler.providers.xseries.client import Client

    if target.sandbox_db is None:
        return Client(target.base_url, target.token, **options)
    from reconciler.providers.asgi import SandboxTransport
    from reconciler.providers.xseries.sandbox import SandboxStore

    path = target.sandbox_db
    path.parent.mkdir(parents=True, exist_ok=True)
    store = SandboxStore(path, token=target.token)
    (console or stderr_console()).print(
        f"Using the embedded sandbox store ({path}); set LIGHTSPEED_STORE and "
        "LIGHTSPEED_TOKEN to work with a real store.",
        markup=False,
        highlight=False,
    )
    # The file's creation time tells a recreated sandbox from the old one, so a cache made
    # against a deleted sandbox.db is never trusted.
    born = str(store.retailer().get("created_at") or "")
    return Client(
        target.base_url,
        target.token,
        transport=SandboxTransport(store),
        identity=f"embedded-sandbox:{path.resolve()}@{born}",
        **options,
    )
