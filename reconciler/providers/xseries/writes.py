"""X-Series' compile: a plan turned into *steps*, each one write request under the API's rules
(lightspeed-xseries.md §5-6), with the changes it carries and the steps it depends on:

- one POST per new brand, supplier, tag or variant attribute, one PUT per changed brand or
  supplier, and one bulk POST for every new category; after the new names of each kind, one
  read that settles a race with another apply (`NameSettle`, no write unless it finds one);
- one `POST /2.0/products` per new product, with all its variants;
- per existing family: one 2.1 PUT per variant whose own fields changed, the family-wide fields
  riding along as `common` in the first of them; one 2.1 PUT of their own only when no variant
  changed; one 2.1 POST per variant added;
- prune: one PUT `is_active: false` per row to deactivate, one DELETE per product or variant;
- nothing for an unchanged or adopted object.

Pure: values in, `Compiled` out; the engine (`reconciler.apply`) runs the steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.live import Live
from reconciler.model import Json, name_key
from reconciler.plan import Action, Change, FieldChange, Kind, Plan
from reconciler.providers.base import Compiled, ManagedIndex
from reconciler.providers.steps import StepGraph, label_key
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.payloads import Ids, family_active
from reconciler.providers.xseries.steps import (
    _FEED_NAME_KINDS,
    _NAME_KINDS,
    CategoryBulk,
    Census,
    ImageDelete,
    ImageMove,
    ImageUpload,
    NameCreate,
    NameSettle,
    NameUpdate,
    ProductCreate,
    ProductDelete,
    ProductPut,
    Step,
    VariantAdd,
)

_RETIRE = (Action.DEACTIVATE, Action.DELETE)


# -- building the steps from a plan ------------------------------------------------------------


class _Builder(StepGraph[Step]):
    def __init__(
        self, plan: Plan, live: Live, managed: ManagedIndex, catalog_dir: Path | None
    ) -> None:
        super().__init__(plan, live, managed, catalog_dir)
        self.census = Census()  # one read per named kind, shared by this apply's creates
        self.settles: dict[str, int] = {}  # kind -> the step settling its new names

    def build(self) -> list[Step]:
        categories = [c for c in self.plan.changes if c.kind is Kind.CATEGORY]
        for change in self.plan.changes:
            if change.kind in _NAME_KINDS:
                self._name(change)
        for kind in _FEED_NAME_KINDS:
            creates = [s for s in self.steps if isinstance(s, NameCreate) and s.kind is kind]
            if creates:  # one race check for all of the kind's creates
                self.settles[str(kind)] = self._add(
                    NameSettle(self._next(), kind, creates, self.census)
                ).id
        new_categories = [c for c in categories if c.action is Action.CREATE]
        if new_categories:
            bulk = self._add(CategoryBulk(self._next(), new_categories, self.census))
            for c in new_categories:
                self.providers[(str(Kind.CATEGORY), label_key(c.key))] = bulk.id
        for change in self.plan.changes:
            if change.kind is Kind.PRODUCT:
                self._product(change)
        return self.steps

    def _name(self, change: Change) -> None:
        if change.action is Action.CREATE:
            step = self._add(NameCreate(self._next(), change, self.census))
            self.providers[(str(change.kind), name_key(change.key))] = step.id
        elif change.action is Action.UPDATE:
            self._add(NameUpdate(self._next(), change))
        elif change.action is Action.ADOPT:
            self.adopted.append(change)

    def _deps(self, values: Mapping[str, Json]) -> set[int]:
        """Steps creating the names these catalog values reference."""
        wanted: list[tuple[str, str]] = []
        if values.get("brand"):
            wanted.append((str(Kind.BRAND), name_key(values["brand"])))
        if values.get("supplier"):
            wanted.append((str(Kind.SUPPLIER), name_key(values["supplier"])))
        for tag in values.get("tags") or ():
            wanted.append((str(Kind.TAG), name_key(tag)))
        options = values.get("options") or ()
        for option in options.keys() if isinstance(options, dict) else options:
            wanted.append((str(Kind.ATTRIBUTE), name_key(option)))
        if values.get("category"):
            wanted.append((str(Kind.CATEGORY), label_key(values["category"])))
        made = [w for w in wanted if w in self.providers]
        # A new brand, supplier or tag is referenced once its kind is settled (`NameSettle`).
        settled = {self.settles[kind] for kind, _ in made if kind in self.settles}
        return {self.providers[w] for w in made} | settled

    def _product(self, change: Change) -> None:
        tax = self.plan.tax_exclusive
        values = {f.field: f.after for f in change.fields}
        if change.action is Action.CREATE:
            step = self._add(ProductCreate(self._next(), change, tax_exclusive=tax))
            step.deps = self._deps(values)
            for v in step.changes[1:]:
                step.deps |= self._deps({f.field: f.after for f in v.fields})
            self._after_create(change, step)
            self._images(change, step)
            return
        if change.action is Action.ADOPT:
            self.adopted.append(change)
            self.adopted.extend(c for c in change.children if c.action is Action.ADOPT)
            return
        if change.action in _RETIRE:
            self._retire_product(change)
            return
        if change.action is not Action.UPDATE:
            return
        self._images(change, None)
        if not values and any(c.kind is Kind.IMAGE for c in change.children):
            # No request writes the product itself: its outcome is its children's (so a
            # product adopted with its images, e.g. after a lost state file, is recorded).
            self.groups.append(change)
        family = self.live.products.get(change.key)
        if family is None or not family.is_family:
            if not values:
                return
            # A simple product: its family-wide and own fields go in one request.
            sku = family.product.sku if family else None
            self._add(
                ProductPut(
                    self._next(),
                    f"update product {change.key}",
                    [change],
                    target=change,
                    sku=sku,
                    common={k: v for k, v in values.items() if k in _FAMILY_FIELDS},
                    details={k: v for k, v in values.items() if k not in _FAMILY_FIELDS},
                    family_change=change,
                    tax_exclusive=tax,
                )
            ).deps = self._deps(values)
            return
        common_step: Step | None = None
        for child in change.children:
            if child.kind is Kind.VARIANT and child.action is Action.UPDATE:
                own = {f.field: f.after for f in child.fields}
                rides = common_step is None and bool(values)
                step = self._add(
                    ProductPut(
                        self._next(),
                        f"update variant {child.key}"
                        + (f" (with {change.key}'s family-wide fields)" if rides else ""),
                        [change, child] if rides else [child],
                        target=child,
                        sku=child.key,
                        details=own,
                        common=values if rides else None,
                        family_change=change,
                        tax_exclusive=tax,
                    )
                )
                step.deps = self._deps(own) | (self._deps(values) if rides else set())
                step.payer = child  # the family-wide fields ride along at no cost of their own
                if rides:
                    common_step = step
        if common_step is None and values:
            common_step = self._add(
                ProductPut(
                    self._next(),
                    f"update product {change.key}",
                    [change],
                    target=change,
                    sku=None,
                    details={},
                    common=values,
                    family_change=change,
                    tax_exclusive=tax,
                )
            )
            common_step.deps = self._deps(values)
        for child in change.children:
            if child.kind is Kind.VARIANT and child.action is Action.CREATE:
                add = self._add(VariantAdd(self._next(), child, change, tax_exclusive=tax))
                add.deps = self._deps({f.field: f.after for f in child.fields})
                if common_step is not None:  # a renamed family is found by its new name
                    add.deps.add(common_step.id)
            elif child.kind is Kind.VARIANT and child.action in _RETIRE:
                self._retire_row(child, change)
            elif child.kind is not Kind.IMAGE and child.action is Action.ADOPT:
                self.adopted.append(child)

    def _image_upload(self, change: Change, product: Change) -> Step:
        return ImageUpload(self._next(), change, product.key, catalog_dir=self.catalog_dir)

    def _image_move(self, change: Change, product: Change) -> Step:
        return ImageMove(self._next(), change, product.key)

    def _image_delete(self, change: Change, product: Change) -> Step:
        return ImageDelete(self._next(), change, product.key)

    def _after_create(self, change: Change, create: Step) -> None:
        """Variants of a new family whose `active` differs from the family's flag."""
        family_flag = family_active(change)
        for v in change.children:
            if v.kind is not Kind.VARIANT:
                continue
            active = {f.field: f.after for f in v.fields}.get("active")
            if active is None or bool(active) == family_flag:
                continue
            # Its own change (not in the plan as such), so a failure shows and is recorded.
            flag = Change(
                Kind.VARIANT,
                v.key,
                Action.UPDATE,
                (FieldChange("active", family_flag, bool(active)),),
            )
            fix = self._add(
                ProductPut(
                    self._next(),
                    f"set variant {v.key} active={str(bool(active)).lower()}",
                    [flag],
                    target=v,
                    sku=v.key,
                    details={"active": bool(active)},
                    common=None,
                    family_change=change,
                    tax_exclusive=self.plan.tax_exclusive,
                )
            )
            fix.deps = {create.id}
            fix.payer = change  # the family's create: the flag is part of creating it

    def _retire_product(self, change: Change) -> None:
        if self._unmanaged_product(change):
            return
        found = self.live.products.get(change.key)
        if change.action is Action.DELETE:
            whole = found.is_family if found else True
            self._add(ProductDelete(self._next(), change, whole_family=whole))
            return
        rows = [c for c in change.children if c.kind is Kind.VARIANT]
        if not rows:
            self._add(
                ProductPut(
                    self._next(),
                    f"deactivate product {change.key}",
                    [change],
                    target=change,
                    sku=found.product.sku if found else None,
                    details={"active": False},
                    common=None,
                    family_change=change,
                    tax_exclusive=self.plan.tax_exclusive,
                )
            )
            return
        self.groups.append(change)
        for row in rows:
            self._retire_row(row, change)

    def _retire_row(self, change: Change, family_change: Change) -> None:
        if self._unmanaged_row(change, family_change):
            return
        if change.action is Action.DELETE:
            self._add(ProductDelete(self._next(), change, whole_family=False))
            return
        self._add(
            ProductPut(
                self._next(),
                f"deactivate variant {change.key}",
                [change],
                target=change,
                sku=change.key,
                details={"active": False},
                common=None,
                family_change=family_change,
                tax_exclusive=self.plan.tax_exclusive,
            )
        )


_FAMILY_FIELDS = frozenset(
    {"name", "description", "brand", "supplier", "supplier_code", "category", "tags", "options"}
)


def build_steps(
    plan: Plan,
    live: Live,
    managed: ManagedIndex,
    *,
    catalog_dir: Path | None = None,
) -> Compiled[Client]:
    """The plan as steps, plus the adoptions (no request), refusals and grouped changes; the
    steps prepare their payloads from one `Ids`, which the engine teaches what they create."""
    builder = _Builder(plan, live, managed, catalog_dir)
    builder.build()
    return builder.compiled(Ids(live))
