"""The plan: a value saying exactly what `apply` will do, and what it will cost.

Text, markdown and JSON are renderings of this one value (`reconciler.render`); a saved plan is
its JSON plus the live versions it was made against, so `apply` can refuse a stale plan
(design invariant 2). Field values are JSON-ready and in the catalog's own shape: decimals as
strings ("25.00"), names rather than ids, a category as its "A / B" path, tags as a sorted list.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property

from reconciler.live import opaque_version
from reconciler.model import (
    FORMAT_VERSION,
    Json,
)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"  # exists live, identical, not yet managed: record only, no write
    DEACTIVATE = "deactivate"
    DELETE = "delete"
    NOOP = "no-op"


class Kind(StrEnum):
    BRAND = "brand"
    SUPPLIER = "supplier"
    TAG = "tag"
    ATTRIBUTE = "attribute"  # a variant attribute (an option name), by name
    CATEGORY = "category"  # by its path label ("A / B")
    PRODUCT = "product"  # a family or a simple product, keyed by handle
    VARIANT = "variant"  # one sellable row of a family, keyed by sku
    IMAGE = "image"  # a family image, keyed by its catalog path


# Kinds named by X-Series' wire names before the core named them in catalog terms (old name ->
# Kind): the ledger's rows are migrated (state migration m004); a saved plan is refused.
RENAMED_KINDS = {"variant_attribute": "attribute", "product_category": "category"}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before -> after. `drift`: the live value is not what this tool last applied,
    i.e. someone edited it in the store and applying will overwrite their edit."""

    field: str
    before: Json
    after: Json
    drift: bool = False

    def to_json(self) -> dict[str, Json]:
        return {
            "field": self.field,
            "before": self.before,
            "after": self.after,
            "drift": self.drift,
        }

    @staticmethod
    def from_json(data: dict[str, Json]) -> FieldChange:
        return FieldChange(
            field=data["field"],
            before=data["before"],
            after=data["after"],
            drift=bool(data.get("drift", False)),
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One object's change. Product changes carry their variants and images as `children`.

    `fields` lists only what differs (for a create: every declared field, before `None`).
    `remote_id` and `live_version` are what the plan saw in the store (None for a create);
    apply refuses when the live version has moved since. `requests` is what this change alone
    costs under the API's rules (children count their own).
    """

    kind: Kind
    key: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    children: tuple[Change, ...] = ()
    remote_id: str | None = None
    live_version: str | None = None  # opaque (the provider's), compared only for equality
    requests: int = 0
    note: str | None = None  # a short human remark, e.g. why a change is skipped

    def field(self, name: str) -> FieldChange | None:
        for fc in self.fields:
            if fc.field == name:
                return fc
        return None

    def walk(self) -> list[Change]:
        """This change and all its descendants, parents first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def to_json(self) -> dict[str, Json]:
        data: dict[str, Json] = {
            "kind": str(self.kind),
            "key": self.key,
            "action": str(self.action),
            "fields": [f.to_json() for f in self.fields],
            "remote_id": self.remote_id,
            "live_version": self.live_version,
            "requests": self.requests,
        }
        if self.children:
            data["children"] = [c.to_json() for c in self.children]
        if self.note:
            data["note"] = self.note
        return data

    @staticmethod
    def from_json(data: dict[str, Json]) -> Change:
        return Change(
            kind=Kind(data["kind"]),
            key=data["key"],
            action=Action(data["action"]),
            fields=tuple(FieldChange.from_json(f) for f in data.get("fields", [])),
            children=tuple(Change.from_json(c) for c in data.get("children", [])),
            remote_id=data.get("remote_id"),
            live_version=opaque_version(data.get("live_version")),
            requests=int(data.get("requests", 0)),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class Violation:
    """A change that breaks a guardrail (`reconciler.guardrails`): on `product` (a handle),
    the object `key` (the handle, or a variant's SKU) would have `field` go from `before` to
    `after`. `detail` says by how much, in words; `allowed` is "catalog" when the product's
    `allow:` in the YAML makes it an intended exception, "option" when `--allow` was given to
    the plan (shown, but apply decides for itself), None otherwise."""

    rule: str
    product: str
    key: str
    field: str
    before: Json
    after: Json
    detail: str
    allowed: str | None = None

    def to_json(self) -> dict[str, Json]:
        return {
            "rule": self.rule,
            "product": self.product,
            "key": self.key,
            "field": self.field,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
            "allowed": self.allowed,
        }

    @staticmethod
    def from_json(data: dict[str, Json]) -> Violation:
        return Violation(
            rule=data["rule"],
            product=data["product"],
            key=data["key"],
            field=data["field"],
            before=data["before"],
            after=data["after"],
            detail=data["detail"],
            allowed=data.get("allowed"),
        )


@dataclass(frozen=True)
class Estimate:
    """What applying costs: requests, and the time they take under the store's rate limit."""

    requests: int
    seconds: float
    rate_limit: int  # requests per window; a leaky bucket: its size in units
    window_seconds: float  # a leaky bucket: the time a full one takes to drain
    # A provider that prices requests in units of a leaky bucket (R-Series) says what the
    # plan costs in them; None: every request costs one of a sliding window (X-Series).
    units: float | None = None

    @property
    def bucket(self) -> bool:
        return self.units is not None

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "rate_limit": self.rate_limit,
            "window_seconds": self.window_seconds,
        }
        if self.units is not None:
            out["units"] = self.units
            out["drip_per_second"] = round(self.rate_limit / self.window_seconds, 6)
        return out


@dataclass(frozen=True)
class Plan:
    """Every change in apply order: names (brands, suppliers, tags, attributes, categories)
    first, then products by handle. No-op changes are kept out; `unchanged` counts them."""

    changes: tuple[Change, ...]
    catalog_digest: str
    store: str  # the store's label (domain prefix or base URL), never the token
    tax_exclusive: bool
    estimate: Estimate
    git_commit: str | None = None
    unchanged: int = 0
    notices: tuple[str, ...] = ()
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    provider: str = "xseries"  # the platform it was made for (`reconciler.providers`)
    extra: dict[str, Json] = field(default_factory=dict)  # forward-compatible additions
    # The `settings.guardrails` the plan was checked under (a saved plan is bound to them),
    # what breaks them, and the fields that are not the catalog's (`settings.fields`).
    guardrails: dict[str, str] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()
    field_owners: dict[str, str] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.all_changes())

    def all_changes(self) -> list[Change]:
        return [c for top in self.changes for c in top.walk()]

    def counts(self) -> Counter[Action]:
        """Actions over top-level objects (a family counts once, not per variant)."""
        return Counter(c.action for c in self.changes)

    def live_versions(self) -> dict[str, str]:
        """`kind:key` -> live version the plan saw, for every object it touches."""
        return {
            f"{c.kind}:{c.key}": c.live_version
            for c in self.all_changes()
            if c.live_version is not None
        }

    def to_json_head(self) -> dict[str, Json]:
        """`to_json` up to the changes (what streaming renderers write before them)."""
        return {
            "format_version": self.format_version,
            "provider": self.provider,
            "created_at": self.created_at,
            "store": self.store,
            "tax_exclusive": self.tax_exclusive,
            "catalog_digest": self.catalog_digest,
            "git_commit": self.git_commit,
            "summary": {str(a): n for a, n in sorted(self.counts().items())},
            "unchanged": self.unchanged,
            "estimate": self.estimate.to_json(),
            "guardrails": {
                "settings": dict(self.guardrails),
                "violations": [v.to_json() for v in self.violations],
            },
            "field_owners": dict(self.field_owners),
            "notices": list(self.notices),
        }

    def to_json(self) -> dict[str, Json]:
        return {
            **self.to_json_head(),
            "changes": [c.to_json() for c in self.changes],
            "live_versions": self.live_versions(),
            **({"extra": self.extra} if self.extra else {}),
        }

    @staticmethod
    def from_json(data: dict[str, Json]) -> Plan:
        est = data["estimate"]
        guarded = data.get("guardrails") or {}
        return Plan(
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            catalog_digest=data["catalog_digest"],
            store=data["store"],
            tax_exclusive=bool(data["tax_exclusive"]),
            estimate=Estimate(
                requests=int(est["requests"]),
                seconds=float(est["seconds"]),
                rate_limit=int(est["rate_limit"]),
                window_seconds=float(est["window_seconds"]),
                units=float(est["units"]) if est.get("units") is not None else None,
            ),
            git_commit=data.get("git_commit"),
            unchanged=int(data.get("unchanged", 0)),
            notices=tuple(data.get("notices", [])),
            created_at=data.get("created_at", ""),
            format_version=int(data["format_version"]),
            provider=str(data.get("provider") or "xseries"),
            extra=dict(data.get("extra", {})),
            guardrails=dict(guarded.get("settings") or {}),
            violations=tuple(Violation.from_json(v) for v in guarded.get("violations") or ()),
            field_owners=dict(data.get("field_owners") or {}),
        )

    def with_costs(
        self,
        charges: Mapping[int, int],
        estimate: Estimate,
        *,
        notes: Mapping[int, str] | None = None,
        notices: tuple[str, ...] = (),
    ) -> Plan:
        """This plan with each change's `requests` as the provider's compile charges it
        (`id(change)` -> requests; the compile saw these very objects) and its estimate; with
        the compile's `notes` on the changes that have none yet and its `notices` added."""
        said = notes or {}

        def costed(change: Change) -> Change:
            children = tuple(costed(c) for c in change.children)
            requests = charges.get(id(change), 0)
            note = change.note or said.get(id(change))
            if (
                requests == change.requests
                and note == change.note
                and all(a is b for a, b in zip(children, change.children, strict=True))
            ):
                # Nothing to add (an adoption costs nothing): the change itself, not a copy
                # (a cold plan of 100,000 families would otherwise exist twice here).
                return change
            return replace(change, requests=requests, children=children, note=note)

        return replace(
            self,
            changes=tuple(costed(c) for c in self.changes),
            estimate=estimate,
            notices=self.notices + tuple(n for n in notices if n not in self.notices),
        )

    def digest(self) -> str:
        """sha256 of the plan's content (not its timestamp): what the ledger records as applied.
        Worked out once per plan value (a 10,000-family plan takes a second)."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        data = self.to_json()
        data.pop("created_at", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
