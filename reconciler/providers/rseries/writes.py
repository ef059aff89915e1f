"""R-Series' compile: a plan turned into *steps*, each one write request under the API's rules
(lightspeed-rseries.md §6-§9), with the changes it carries, the steps it depends on and its
cost in the bucket's units:

- one POST per new brand (Manufacturer) or supplier (Vendor); one POST per new category
  (10 units each), parents first; one POST per attribute set a new family needs that no system
  set holds (its new variant attributes ride on it); a new tag rides on the first matrix or
  item that sends it (the store makes a tag it is sent by name), else one POST of its own;
- a new family: one POST ItemMatrix, then one POST Item per variant; a new simple product:
  one POST Item; an item declared inactive is archived after (DELETE);
- an existing family: one PUT of the matrix when its name, brand, supplier, category or tags
  changed, and one PUT per item whose own fields changed or that holds a changed family field
  (name in its description, brand, supplier and its code, category), all of that item's
  fields in the one PUT; one POST Item per variant added;
- `active: false` archives the item (DELETE, after its PUT when it has one): archiving zeroes
  its stock, and the step says so; `active: true` restores it inside its PUT;
- prune: one DELETE ItemMatrix per family (it archives its items), one DELETE Item per
  simple product or variant, only of what this catalog manages;
- nothing for an unchanged or adopted object.

Pure: values in, `Compiled` out; the engine (`reconciler.apply`) runs the steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.live import Live, label_path
from reconciler.model import Json, name_key
from reconciler.plan import Action, Change, FieldChange, Kind, Plan
from reconciler.providers.base import Compiled, ManagedIndex
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.normalize import tag_key
from reconciler.providers.rseries.payloads import Ids, options_key, system_set, tag_names
from reconciler.providers.rseries.steps import (
    Archive,
    AttributeSetCreate,
    CategoryCreate,
    Census,
    ImageDelete,
    ImageMove,
    ImageUpload,
    ItemCreate,
    Layouts,
    MatrixCreate,
    NameCreate,
    RecordPut,
    Step,
)
from reconciler.providers.steps import StepGraph, label_key

_RETIRE = (Action.DEACTIVATE, Action.DELETE)
ARCHIVE_NOTE = "archived in R-Series: its stock is zeroed, irreversibly"
_MATRIX_FIELDS = ("name", "brand", "supplier", "category", "tags")
_ITEM_WIDE = ("name", "brand", "supplier", "supplier_code", "category")
# What R-Series cannot hold (validate says so when the store is R-Series).
_UNHELD = frozenset({"description"})


def _values(change: Change) -> dict[str, Json]:
    return {f.field: f.after for f in change.fields}


class _Builder(StepGraph[Step]):
    def __init__(
        self, plan: Plan, live: Live, managed: ManagedIndex, catalog_dir: Path | None
    ) -> None:
        super().__init__(plan, live, managed, catalog_dir)
        self.census = Census()
        self.layouts = Layouts()
        self.sets: dict[str, AttributeSetCreate] = {}
        self.new_attributes: dict[str, Change] = {}  # name key -> the plan's attribute create

    def build(self) -> list[Step]:
        tags: list[Change] = []
        categories = sorted(
            (c for c in self.plan.changes if c.kind is Kind.CATEGORY),
            key=lambda c: (len(label_path(c.key)), c.key),
        )
        for change in self.plan.changes:
            if change.kind in (Kind.BRAND, Kind.SUPPLIER):
                self._name(change)
            elif change.kind is Kind.TAG:
                if change.action is Action.CREATE:
                    tags.append(change)
                elif change.action is Action.ADOPT:
                    self.adopted.append(change)
            elif change.kind is Kind.ATTRIBUTE:
                if change.action is Action.CREATE:
                    self.new_attributes[name_key(change.key)] = change
                elif change.action is Action.ADOPT:
                    self.adopted.append(change)
        for change in categories:
            self._category(change)
        for change in self.plan.changes:
            if change.kind is Kind.PRODUCT:
                self._product(change)
        self._tags(tags)
        self._attributes_left()
        return self.steps

    # -- names ---------------------------------------------------------------------------------

    def _name(self, change: Change) -> None:
        if change.action is Action.CREATE:
            step = self._add(NameCreate(self._next(), change, self.census))
            self.providers[(str(change.kind), name_key(change.key))] = step.id
        elif change.action is Action.ADOPT:
            self.adopted.append(change)
        elif change.action is Action.UPDATE:
            self.refused.append(
                (change, f"R-Series holds no description for a {change.kind}; remove it there")
            )

    def _category(self, change: Change) -> None:
        if change.action is Action.ADOPT:
            self.adopted.append(change)
            return
        if change.action is not Action.CREATE:
            return
        step = self._add(CategoryCreate(self._next(), change, self.census))
        path = label_path(change.key)
        parent = self.providers.get((str(Kind.CATEGORY), label_key(" / ".join(path[:-1]))))
        if len(path) > 1 and parent is not None:
            step.deps.add(parent)
        self.providers[(str(Kind.CATEGORY), label_key(change.key))] = step.id

    def _tags(self, tags: list[Change]) -> None:
        """A new tag rides on the first step that sends it by name; else a POST of its own."""
        for change in tags:
            carrier = next(
                (
                    s
                    for s in self.steps
                    if any(tag_key(t) == tag_key(change.key) for t in _sent_tags(s))
                ),
                None,
            )
            if carrier is not None:
                carrier.changes.append(change)
            else:
                self._add(NameCreate(self._next(), change, self.census))

    def _attribute_set(self, options: tuple[str, ...], payer: Change) -> int | None:
        """The step making the attribute set a new family's options need, or None when a
        system set holds them."""
        if system_set(options) is not None:
            return None
        key = options_key(options)
        step = self.sets.get(key)
        if step is None:
            carried = [
                self.new_attributes.pop(name_key(o))
                for o in options
                if name_key(o) in self.new_attributes
            ]
            step = AttributeSetCreate(self._next(), options, carried, self.census)
            if not carried:  # no new name: the family that needs the set pays for it
                step.payer = payer
            self._add(step)
            self.sets[key] = step
        return step.id

    def _attributes_left(self) -> None:
        # An attribute no new family uses needs no set of its own: it exists as soon as a
        # family's set names it, so it is recorded with no request.
        self.adopted.extend(self.new_attributes.values())
        self.new_attributes.clear()

    def _deps(self, values: Mapping[str, Json]) -> set[int]:
        wanted: list[tuple[str, str]] = []
        if values.get("brand"):
            wanted.append((str(Kind.BRAND), name_key(values["brand"])))
        if values.get("supplier"):
            wanted.append((str(Kind.SUPPLIER), name_key(values["supplier"])))
        if values.get("category"):
            wanted.append((str(Kind.CATEGORY), label_key(values["category"])))
        return {self.providers[w] for w in wanted if w in self.providers}

    # -- products ------------------------------------------------------------------------------

    def _product(self, change: Change) -> None:
        if change.action is Action.ADOPT:
            self.adopted.append(change)
            self.adopted.extend(c for c in change.children if c.action is Action.ADOPT)
            return
        if change.action is Action.CREATE:
            self._images(change, self._create(change))
        elif change.action in _RETIRE:
            self._retire_product(change)
        elif change.action is Action.UPDATE:
            self._update(change)
            self._images(change, None)

    def _image_upload(self, change: Change, product: Change) -> Step:
        # Uploaded with its `ordering`, on the family's ItemMatrix or the product's Item.
        found = self.live.products.get(product.key)
        family = (
            found.is_family
            if found is not None
            else any(c.kind is Kind.VARIANT for c in product.children)
        )
        return ImageUpload(
            self._next(), change, product.key, family=family, catalog_dir=self.catalog_dir
        )

    def _image_move(self, change: Change, product: Change) -> Step:
        return ImageMove(self._next(), change, product.key)

    def _image_delete(self, change: Change, product: Change) -> Step:
        return ImageDelete(self._next(), change, product.key)

    def _create(self, change: Change) -> Step:
        """The steps creating a product; returns the one its images go on."""
        values = _values(change)
        variants = [c for c in change.children if c.kind is Kind.VARIANT]
        if not variants:
            step = self._add(
                ItemCreate(
                    self._next(),
                    change,
                    family_change=None,
                    layouts=self.layouts,
                    new_family=True,
                )
            )
            step.deps = self._deps(values)
            if values.get("active") is False:
                self._archive_new(change, step, change)
            return step
        known = frozenset(
            p.remote_id
            for p in self.live.products.values()
            if p.is_family and name_key(p.product.name) == name_key(str(values.get("name")))
        )
        matrix = self._add(MatrixCreate(self._next(), change, known_ids=known))
        matrix.deps = self._deps(values)
        set_step = self._attribute_set(tuple(values.get("options") or ()), change)
        if set_step is not None:
            matrix.deps.add(set_step)
        for variant in variants:
            item = self._add(
                ItemCreate(
                    self._next(),
                    variant,
                    family_change=change,
                    layouts=self.layouts,
                    new_family=True,
                )
            )
            item.deps = {matrix.id}
            if _values(variant).get("active") is False:
                self._archive_new(variant, item, variant)
        return matrix

    def _archive_new(self, change: Change, create: Step, payer: Change) -> None:
        """A new item the catalog declares inactive: created, then archived (its own change,
        so a failure shows and is recorded)."""
        flag = Change(
            Kind.VARIANT if change.kind is Kind.VARIANT else Kind.PRODUCT,
            change.key,
            Action.UPDATE,
            (FieldChange("active", True, False),),
        )
        step = self._add(
            Archive(
                self._next(),
                f"archive new {change.key}",
                [flag],
                resource="Item",
                target=change,
                new=True,
            )
        )
        step.deps = {create.id}
        step.payer = payer

    def _retire_product(self, change: Change) -> None:
        if self._unmanaged_product(change):
            return
        found = self.live.products.get(change.key)
        family = found.is_family if found is not None else bool(change.children)
        rows = [c for c in change.children if c.kind is Kind.VARIANT]
        self._add(
            Archive(
                self._next(),
                f"archive {'family' if family else 'product'} {change.key}",
                [change, *rows],
                resource="ItemMatrix" if family else "Item",
                target=change,
            )
        )

    def _retire_row(self, change: Change, family_change: Change) -> None:
        if self._unmanaged_row(change, family_change):
            return
        self._add(
            Archive(
                self._next(),
                f"archive variant {change.key}",
                [change],
                resource="Item",
                target=change,
            )
        )

    def _update(self, change: Change) -> None:
        values = {k: v for k, v in _values(change).items() if k not in _UNHELD}
        unheld = [f.field for f in change.fields if f.field in _UNHELD]
        found = self.live.products.get(change.key)
        if found is None:
            return
        if not found.is_family:
            if not values:
                if unheld:
                    self.refused.append((change, _unheld_reason(unheld)))
                elif change.children:
                    # No request writes the product itself (only its images): its outcome
                    # is theirs, so it is recorded as managed when they are done.
                    self.groups.append(change)
                return
            active = values.get("active")
            step = self._add(
                RecordPut(
                    self._next(),
                    f"update product {change.key}",
                    [change],
                    on="item",
                    target=change,
                    values={k: v for k, v in values.items() if k != "active" or v},
                    family_change=change,
                    archive=active is False,
                )
            )
            step.deps = self._deps(values)
            return
        if "options" in values:
            reason = (
                "R-Series cannot change the options of an existing family (its attribute "
                "set); archive it and declare it under a new name, or keep its options"
            )
            self.refused.append((change, reason))
            for kid in change.children:
                if kid.kind is Kind.VARIANT and kid.action is not Action.ADOPT:
                    self.refused.append((kid, reason))
            return
        if not values and unheld and not change.children:
            self.refused.append((change, _unheld_reason(unheld)))
            return
        matrix_values = {k: v for k, v in values.items() if k in _MATRIX_FIELDS}
        wide = {k: v for k, v in values.items() if k in _ITEM_WIDE}
        carried = False
        matrix_step: Step | None = None
        if matrix_values:
            matrix_step = self._add(
                RecordPut(
                    self._next(),
                    f"update family {change.key}",
                    [change],
                    on="matrix",
                    target=change,
                    values=matrix_values,
                    family_change=change,
                )
            )
            matrix_step.deps = self._deps(matrix_values)
            carried = True
        children = {c.key: c for c in change.children if c.kind is Kind.VARIANT}
        for sku in sorted(found.rows):
            child = children.get(sku)
            if child is not None and child.action in _RETIRE:
                continue
            own = _values(child) if child is not None and child.action is Action.UPDATE else {}
            if not own and not wide:
                continue
            row = found.rows[sku]
            payer: Change | None = None
            if child is not None and child.action is Action.UPDATE:
                target = child
            else:
                # Only family-wide fields change on this item: its own change, so a failure
                # shows and is recorded (the family's cost pays for it).
                target = Change(
                    Kind.VARIANT,
                    sku,
                    Action.UPDATE,
                    tuple(f for f in change.fields if f.field in _ITEM_WIDE),
                    remote_id=row.id,
                    live_version=row.version,
                )
                payer = change
            carry = [target] if carried else [change, target]
            carried = True
            options = own.get("options") or dict(row.values.options)
            step = self._add(
                RecordPut(
                    self._next(),
                    f"update variant {sku}" + (" (with its family's fields)" if wide else ""),
                    carry,
                    on="variant",
                    target=target,
                    values={**wide, **{k: v for k, v in own.items() if k != "active" or v}},
                    family_change=change,
                    row_options=options,
                    layouts=self.layouts,
                    archive=own.get("active") is False,
                )
            )
            # A variant's own change pays; family-wide fields ride along at no cost of their
            # own. An item changed only by its family's fields is paid by the family.
            step.payer = payer or target
            step.deps = self._deps(wide)
        if not carried:
            # No request writes the family itself: its outcome is its children's.
            self.groups.append(change)
        for child in children.values():
            if child.action is Action.CREATE:
                item = self._add(
                    ItemCreate(
                        self._next(),
                        child,
                        family_change=change,
                        layouts=self.layouts,
                        new_family=False,
                    )
                )
                item.deps = self._deps(wide)
                if matrix_step is not None:
                    item.deps.add(matrix_step.id)
                if _values(child).get("active") is False:
                    self._archive_new(child, item, child)
            elif child.action in _RETIRE:
                self._retire_row(child, change)
            elif child.action is Action.ADOPT:
                self.adopted.append(child)


def _unheld_reason(fields: list[str]) -> str:
    return (
        f"R-Series holds no {' or '.join(fields)} for a product; remove it from the catalog "
        "(validate says so)"
    )


def _sent_tags(step: Step) -> list[str]:
    if isinstance(step, RecordPut) and step.on != "variant":
        return list(step.values.get("tags") or [])
    if isinstance(step, ItemCreate) and step.family_change is None:
        return list(step.values.get("tags") or [])
    if isinstance(step, MatrixCreate):
        return list(step.values.get("tags") or [])
    return tag_names(step.payload)


def build_steps(
    plan: Plan,
    live: Live,
    managed: ManagedIndex,
    *,
    catalog_dir: Path | None = None,
) -> Compiled[RSeriesClient]:
    """The plan as steps, plus the adoptions (no request), refusals and grouped changes; the
    steps prepare their bodies from one `Ids`, which the engine teaches what they create."""
    builder = _Builder(plan, live, managed, catalog_dir)
    steps = builder.build()
    notes: dict[int, str] = {}
    archived: set[str] = set()
    for step in steps:
        if step.zeroes_stock:
            for change in step.changes:
                notes[id(change)] = ARCHIVE_NOTE
                archived.add(change.key)
    notices = []
    if archived:
        n = len(archived)
        notices.append(
            f"{n} product{'s or variants are' if n != 1 else ' or variant is'} archived by this "
            "plan: R-Series zeroes an archived item's stock, irreversibly. Apply only if that "
            "is meant (the catalog's settings.prune or active: false asks for it)."
        )
    return builder.compiled(Ids(live), notes=notes, notices=notices)


def total_cost(compiled: Compiled[RSeriesClient]) -> float:
    """What the steps cost in the bucket's units when all goes well."""
    return round(sum(float(getattr(s, "cost", s.requests)) for s in compiled.steps), 3)
