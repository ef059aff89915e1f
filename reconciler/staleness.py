"""Stale saved plans, pure: whether a saved plan still holds against the live store and the
catalog (`stale_reasons`), which of its changes an earlier run already applied (`is_done`), and
the plan that is left to apply (`remaining`). Values in, values out: no provider, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from reconciler.live import Live, family_values, label_path, path_key, row_values
from reconciler.model import Json, name_key
from reconciler.plan import Action, Change, FieldChange, Kind, Plan


def live_object(live: Live, kind: Kind, key: str) -> tuple[str, str | None] | None:
    """(remote id, version) of an object in a live snapshot, the way the planner sees it."""
    if kind is Kind.PRODUCT:
        p = live.products.get(key)
        return (p.remote_id, p.version) if p else None
    if kind is Kind.VARIANT:
        handle = live.sku_owner.get(key)
        row = live.products[handle].rows.get(key) if handle else None
        return (row.id, row.version) if row else None
    names = {
        Kind.BRAND: live.names.brands,
        Kind.SUPPLIER: live.names.suppliers,
        Kind.TAG: live.names.tags,
        Kind.ATTRIBUTE: live.names.attributes,
    }.get(kind)
    if names is not None:
        n = names.get(name_key(key))
        return (n.id, n.version) if n else None
    if kind is Kind.CATEGORY:
        c = live.names.categories.get(path_key(label_path(key)))
        return (c.id, None) if c else None
    return None


# -- saved plans: refuse a stale one -------------------------------------------------------------


# (kind, key) -> field -> value that earlier runs of a saved plan applied (Ledger.applied_by_plan)
Done = Mapping[tuple[str, str], Mapping[str, Json]]


def is_done(change: Change, done: Done) -> bool:
    """Whether earlier runs of the plan applied all of `change`.

    A create or update counts field by field: a new family's variant whose `active` differs
    from the family's flag is created first and flagged by a second request, and a run killed
    between the two has applied the variant but not its flag.
    """
    if (str(change.kind), change.key) not in done:
        return False
    return change.action not in (Action.CREATE, Action.UPDATE) or not _left_over(change, done)


def _left_over(change: Change, done: Done) -> tuple[FieldChange, ...]:
    """The fields of a partly applied `change` that are still to be written."""
    applied = done.get((str(change.kind), change.key), {})
    return tuple(
        f
        for f in change.fields
        if f.field not in applied or not _same_value(applied[f.field], f.after)
    )


def stale_reasons(
    plan: Plan,
    live: Live,
    *,
    catalog_digest: str | None,
    done: Done | None = None,
    unsure: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """Why a saved plan no longer matches the store or the catalog (empty: it still does).

    An object the plan updates must still have the version the plan saw; an object the plan
    creates must still be absent; the catalog must be the one the plan was made from.

    A rerun of a plan whose apply failed or crashed part-way (`done`: what runs of it applied,
    `Ledger.applied_by_plan`; `unsure`: creates whose outcome is unknown, pending intents) has
    moved versions itself, so there a version alone proves nothing: what is already done is not
    checked (it is not sent again), an object it created or may have created is expected, and
    a change still to send is stale only if a field it writes now holds neither the value the
    plan saw nor the one it writes, i.e. someone else edited that field.
    """
    done = done or {}
    resuming = bool(done) or bool(unsure)
    # A category intent names every category of its one bulk call ("A | A / B").
    unsure = [
        (kind, part)
        for kind, key in unsure
        for part in (key.split(" | ") if kind == str(Kind.CATEGORY) else [key])
    ]
    ours = set(done) | set(unsure)
    for top in plan.changes:  # a family's create makes its variants in the same request
        if top.action is Action.CREATE and (str(top.kind), top.key) in ours:
            ours.update((str(c.kind), c.key) for c in top.children)
    reasons: list[str] = []
    if catalog_digest is not None and catalog_digest != plan.catalog_digest:
        reasons.append("the catalog files changed since the plan was made")
    if plan.tax_exclusive != live.tax_exclusive:
        reasons.append("the store's tax mode changed since the plan was made")
    for change in plan.all_changes():
        key = (str(change.kind), change.key)
        if change.kind is Kind.IMAGE or change.action is Action.NOOP or is_done(change, done):
            continue
        found = live_object(live, change.kind, change.key)
        label = f'{change.kind} "{change.key}"'
        if change.action is Action.CREATE:
            if found is not None and key not in ours:
                reasons.append(f"{label} now exists in the store")
            continue
        if found is None:
            reasons.append(f"{label} is no longer in the store")
            continue
        if change.live_version is None or found[1] == change.live_version:
            continue
        if resuming and _untouched_by_others(change, live):
            continue
        reasons.append(
            f"{label} changed in the store after the plan was made "
            f"(version {change.live_version} -> {found[1]})"
        )
    return reasons


def _untouched_by_others(change: Change, live: Live) -> bool:
    """Every field `change` writes still holds what the plan saw, or what it writes."""
    now = live_row_values(live, change.kind, change.key)
    return all(
        _same_value(now.get(f.field), f.before) or _same_value(now.get(f.field), f.after)
        for f in change.fields
    )


def _same_value(a: Json, b: Json) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return bool(a == b)


def remaining(plan: Plan, done: Done) -> Plan:
    """The part of `plan` that earlier runs of it have not applied yet: which changes, not
    what they cost. Costs come from the provider's compile only (`api.remaining_plan` costs
    this), so the requests of a change cut down here are left at 0 and the estimate as saved.
    """

    def left(change: Change) -> Change | None:
        children = tuple(c for c in (left(k) for k in change.children) if c is not None)
        if (str(change.kind), change.key) not in done:
            return replace(change, children=children)
        if not is_done(change, done):
            # Applied in part (made, but a field still to set): an update of what is left.
            fields = _left_over(change, done)
            return replace(
                change, action=Action.UPDATE, fields=fields, children=children, requests=0
            )
        if not children:
            return None
        # Applied itself, but not all of its children: keep it as their parent, writing
        # nothing of its own (a created product's images are then uploaded to it).
        return replace(change, action=Action.UPDATE, fields=(), children=children, requests=0)

    return replace(plan, changes=tuple(c for c in (left(c) for c in plan.changes) if c is not None))


def live_row_values(live: Live, kind: Kind, key: str) -> dict[str, Json]:
    """The catalog-shaped values of a live object (a product, a variant, a brand/supplier)."""
    named = {Kind.BRAND: live.names.brands, Kind.SUPPLIER: live.names.suppliers}.get(kind)
    if named is not None:
        found = named.get(name_key(key))
        return {"name": found.name, "description": found.description or ""} if found else {}
    if kind is Kind.PRODUCT:
        p = live.products.get(key)
        if p is None:
            return {}
        values = family_values(p.product, declared_only=False)
        own = p.rows.get(p.product.sku or "")
        if not p.is_family and own is not None:
            values.update(row_values(own.values, declared_only=False, family=False))
        return values
    handle = live.sku_owner.get(key) if kind is Kind.VARIANT else None
    if handle is None:
        return {}
    row = live.products[handle].rows[key]
    return row_values(row.values, declared_only=False, family=True)
