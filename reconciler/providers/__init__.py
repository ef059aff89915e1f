"""The registry of providers: one line per Lightspeed platform (as pre-commit lists its languages
in all_languages.py). Imported by name, lazily: the core never imports a provider, and a command
pays only for the platform it talks to.

`REGISTRY` lists the platforms the commands can plan and apply against; `SANDBOXES` their sandbox
stores (`catalog sandbox serve --platform NAME`, the embedded stores, the tests' fakes).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.providers.base import Provider, Sandbox

DEFAULT = "xseries"
REGISTRY: Mapping[str, str] = {
    "xseries": "reconciler.providers.xseries.provider:PROVIDER",
    "rseries": "reconciler.providers.rseries.provider:PROVIDER",
}
SANDBOXES: Mapping[str, str] = {
    "xseries": "reconciler.providers.xseries.provider:SANDBOX",
    "rseries": "reconciler.providers.rseries.provider:SANDBOX",
}


def _load(table: Mapping[str, str], name: str | None, what: str) -> Any:
    key = (name or DEFAULT).strip().lower()
    spec = table.get(key)
    if spec is None:
        raise ConfigError(
            f"LIGHTSPEED_PLATFORM={name!r} has no {what} here: use {' or '.join(table)}."
        )
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str | None = None) -> Provider[Any]:
    """The provider registered as `name` (X-Series when None)."""
    provider: Provider[Any] = _load(REGISTRY, name, "provider")
    return provider


def sandbox(name: str | None = None) -> Sandbox[Any]:
    """The sandbox store of platform `name` (X-Series when None)."""
    found: Sandbox[Any] = _load(SANDBOXES, name, "sandbox")
    return found


def from_environ(environ: Mapping[str, str]) -> Provider[Any]:
    """The provider LIGHTSPEED_PLATFORM selects (X-Series when unset)."""
    return get(environ.get("LIGHTSPEED_PLATFORM") or None)


def code_digest(name: str) -> str:
    """A digest of provider `name`'s code outside its sandbox (normalize, refresh, ...): the plan
    memo keys on it, so an upgraded provider never reuses a plan an older one shaped."""
    code = hashlib.sha256()
    package = Path(__file__).parent / name
    for path in sorted(package.glob("*.py")):
        code.update(path.name.encode() + b"\0" + path.read_bytes())
    return code.hexdigest()
