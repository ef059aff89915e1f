"""lightspeed-catalog: a catalog-as-code reconciler for Lightspeed Retail stores.

The library under the `catalog` command: validate a catalog directory, plan against a live store,
apply a plan, import a catalog, as functions over values. Names load lazily (PEP 562): importing
the package imports nothing (`reconciler.__main__` relies on it: Ctrl-C is handled from the
first line of our code), and no provider is loaded until one is used.

    from reconciler import get_provider, load_catalog, make_plan, render_text
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time

__version__ = "0.1.0"

# Public name -> the module (under reconciler.) that defines it.
_EXPORTS: dict[str, str] = {
    "Action": "plan",
    "ApiError": "errors",
    "apply_plan": "api",
    "ApplyEvent": "apply",
    "ApplyFailed": "errors",
    "ApplyResult": "apply",
    "Brand": "model",
    "Catalog": "model",
    "catalog_from_live": "importer",
    "CatalogError": "errors",
    "CatalogInvalid": "errors",
    "Change": "plan",
    "ChangeOutcome": "apply",
    "ConfigError": "errors",
    "Connection": "providers.base",
    "Estimate": "plan",
    "FieldChange": "plan",
    "get_provider": "api",
    "GitError": "errors",
    "GitHubError": "errors",
    "GuardrailBroken": "errors",
    "Image": "model",
    "ImportResult": "importer",
    "Kind": "plan",
    "layout": "importer",
    "Limits": "providers.base",
    "Live": "live",
    "load_catalog": "catalog",
    "LockHeld": "errors",
    "make_plan": "api",
    "Plan": "plan",
    "PlanFileError": "errors",
    "Product": "model",
    "Provider": "providers.base",
    "Prune": "model",
    "read_plan": "planfile",
    "remaining": "staleness",
    "remaining_plan": "api",
    "render_json": "render",
    "render_markdown": "render",
    "render_text": "render",
    "Report": "catalog",
    "Settings": "model",
    "stale_reasons": "staleness",
    "StalePlan": "errors",
    "State": "state",
    "StateError": "errors",
    "Supplier": "model",
    "Target": "providers.base",
    "TransportError": "errors",
    "Unconfirmed": "errors",
    "Unresolved": "errors",
    "UsageError": "errors",
    "validate_directory": "catalog",
    "Variant": "model",
    "write_plan": "planfile",
}

__all__ = [
    "Action",
    "ApiError",
    "ApplyEvent",
    "ApplyFailed",
    "ApplyResult",
    "Brand",
    "Catalog",
    "CatalogError",
    "CatalogInvalid",
    "Change",
    "ChangeOutcome",
    "ConfigError",
    "Connection",
    "Estimate",
    "FieldChange",
    "GitError",
    "GitHubError",
    "GuardrailBroken",
    "Image",
    "ImportResult",
    "Kind",
    "Limits",
    "Live",
    "LockHeld",
    "Plan",
    "PlanFileError",
    "Product",
    "Provider",
    "Prune",
    "Report",
    "Settings",
    "StalePlan",
    "State",
    "StateError",
    "Supplier",
    "Target",
    "TransportError",
    "Unconfirmed",
    "Unresolved",
    "UsageError",
    "Variant",
    "apply_plan",
    "catalog_from_live",
    "get_provider",
    "layout",
    "load_catalog",
    "make_plan",
    "read_plan",
    "remaining",
    "remaining_plan",
    "render_json",
    "render_markdown",
    "render_text",
    "stale_reasons",
    "validate_directory",
    "write_plan",
]

if TYPE_CHECKING:
    from typing import Any

    from reconciler.api import apply_plan, get_provider, make_plan, remaining_plan
    from reconciler.apply import ApplyEvent, ApplyResult, ChangeOutcome
    from reconciler.catalog import Report, load_catalog, validate_directory
    from reconciler.errors import (
        ApiError,
        ApplyFailed,
        CatalogError,
        CatalogInvalid,
        ConfigError,
        GitError,
        GitHubError,
        GuardrailBroken,
        LockHeld,
        PlanFileError,
        StalePlan,
        StateError,
        TransportError,
        Unconfirmed,
        Unresolved,
        UsageError,
    )
    from reconciler.importer import ImportResult, catalog_from_live, layout
    from reconciler.live import Live
    from reconciler.model import Brand, Catalog, Image, Product, Prune, Settings, Supplier, Variant
    from reconciler.plan import Action, Change, Estimate, FieldChange, Kind, Plan
    from reconciler.planfile import read_plan, write_plan
    from reconciler.providers.base import Connection, Limits, Provider, Target
    from reconciler.render import render_json, render_markdown, render_text
    from reconciler.staleness import remaining, stale_reasons
    from reconciler.state import State


def __getattr__(name: str) -> Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reconciler.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
