"""What every command shares: the resolved options, the store selection and the consoles."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import providers
from reconciler.errors import ConfigError

if TYPE_CHECKING:
    # Annotations only: rich and the provider interface load when a command first uses them.
    from rich.console import Console

    from reconciler.providers.base import Limits, Target


def stderr_console(*, color: bool = False) -> Console:
    """Progress and notices go to stderr, so stdout stays one clean document.

    Everything printed holds user text (names, descriptions, CSV messages such as
    `products.csv:100:`), so nothing is ever read as Rich markup, an emoji code or a highlight.
    """
    from rich.console import Console

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
    "CATALOG_SECRETS_TOKEN",
)


def env_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values set in `environ` (for `reconciler.errors.redact`)."""
    return tuple(v.strip() for k in SECRET_VARIABLES if (v := environ.get(k, "")).strip())


def with_platform(environ: dict[str, str], catalog_dir: Path) -> dict[str, str]:
    """`environ`, with LIGHTSPEED_PLATFORM taken from `settings.stores` when it is unset and
    LIGHTSPEED_STORE names a store whose entry names its platform (`rseries:boutique`): one
    catalog repository can run X-Series and R-Series stores as one CI matrix."""
    store = environ.get("LIGHTSPEED_STORE", "").strip().lower()
    if environ.get("LIGHTSPEED_PLATFORM", "").strip() or not store:
        return environ
    from reconciler.github.runner import store_platforms

    try:
        named = {k.lower(): v for k, v in store_platforms(catalog_dir).items()}
    except ConfigError:
        return environ  # validate says what is wrong with the file
    platform = named.get(store)
    return {**environ, "LIGHTSPEED_PLATFORM": platform} if platform else environ


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
            environ=with_platform(dict(os.environ), Path(catalog_dir)),
        )

    def target(self) -> Target:
        """The store the environment selects; the embedded sandbox sits beside the state file
        (each platform's in a file of its own: `sandbox.db`, `rseries-sandbox.db`)."""
        provider = providers.from_environ(self.environ)
        name = provider.sandbox().default_db.name
        return provider.target(self.environ, sandbox_db=self.state_path.parent / name)

    def limits(self) -> Limits:
        """What the platform the environment selects can hold (validate and plan check it)."""
        return providers.from_environ(self.environ).limits

    def color(self, *, stream_isatty: bool) -> bool:
        return use_color(self.color_choice, environ=self.environ, isatty=stream_isatty)


def connect(target: Target, *, console: Console | None = None, **options: Any) -> Any:
    """An open connection to the target store, from the provider that reaches it; `options` go
    to its client (timeouts, pacing, ...). What it says (the embedded sandbox in use) goes to
    stderr."""
    err = console or stderr_console()
    return providers.get(target.platform).connect(
        target, say=lambda text: err.print(text, markup=False, highlight=False), **options
    )


def format_option(
    *choices: str, default: str = "text", help: str = "Output format; json prints one document."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format` for a command, the same everywhere: `fmt` is the parameter it fills."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help=help,
    )
