"""What every command shares: the resolved options, the store selection and the consoles."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.target import StoreTarget, store_target


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
