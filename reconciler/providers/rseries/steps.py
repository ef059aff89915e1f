"""R-Series' steps: one write request each (an archive after a PUT is the one pair), how it is
sent (`run`), prepared from the compile's `Ids` (`prepare`) and, for a create, looked up
instead of sent again after a lost answer (design invariant 6; `CreateStep`).

Nothing in R-Series is unique (two categories "Category One" are recorded), so every create
looks first: named objects in a census (one list read per kind per apply, shared by that
kind's creates, just before the first of them), families by their variants' `customSku`, then
by exact description; items by `customSku`. A create whose answer is lost is looked up the
same way before it is sent again.

Each step knows its cost in the bucket's units (`cost`, priced by `pacing.request_cost` on the
body it will send: 1 per request, 10 per Category write, +0.5 per nested entity) beside its
request count (`requests`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.errors import ApiError, CatalogError
from reconciler.live import Live, Names, label_path
from reconciler.model import Json, name_key
from reconciler.plan import Change, Kind
from reconciler.providers import steps
from reconciler.providers.base import Learned, WriteCounter
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.normalize import tag_key
from reconciler.providers.rseries.pacing import request_cost
from reconciler.providers.rseries.payloads import (
    LAYOUT,
    SET,
    Costing,
    Family,
    Ids,
    barcode_fields,
    item_attributes,
    layout_matches,
    options_key,
    record_fields,
    variant_description,
    vendor_nums,
)
from reconciler.providers.steps import read_image
from reconciler.state.ledger import Ledger

RESOURCES: Mapping[Kind, str] = {
    Kind.BRAND: "Manufacturer",
    Kind.SUPPLIER: "Vendor",
    Kind.TAG: "Tag",
    Kind.CATEGORY: "Category",
}
ZEROES_STOCK = "archiving zeroes its stock, irreversibly"
# Bodies priced at compile time are built against no store at all (`Costing`).
_EMPTY_LIVE = Live(products={}, sku_owner={}, names=Names(), tax_exclusive=True)


def cost_of(method: str, resource: str, body: Json, *, single: bool) -> float:
    """A request's cost in bucket units, as `pacing.request_cost` prices what the client sends."""
    path = f"/{resource}/1.json" if single else f"/{resource}.json"
    return request_cost(method, path, None, body)


@dataclass(eq=False)
class Step(steps.Step[Ids, RSeriesClient]):
    """One write request and the plan changes it carries out (`providers.steps.Step`), with its
    cost: `cost` is in bucket units; `zeroes_stock` says the step archives an item (its stock
    is zeroed, irreversibly).
    """

    cost: float = 1.0
    zeroes_stock: bool = False

    def priced(self, body: Json, method: str, resource: str, *, single: bool) -> None:
        """Set `cost` from the body this step will send (its ids do not change the price)."""
        self.cost = cost_of(method, resource, body, single=single)


class CreateStep(Step, steps.CreateStep[Ids, RSeriesClient]):
    """A create: intent first; an unknown outcome is looked up, never blindly re-sent."""


# -- the census: what the store holds of a kind, read once per apply ----------------------------


class Census:
    """One list read per kind per apply (whatever the cache says: another state file may have
    made something since), shared by every create of that kind, just before the first one."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._read: dict[str, list[Json]] = {}

    def objects(self, client: RSeriesClient, resource: str) -> list[Json]:
        with self._guard:
            lock = self._locks.setdefault(resource, threading.Lock())
        with lock:
            if resource not in self._read:
                params = {"archived": "true"} if resource == "Vendor" else {}
                self._read[resource] = client.query(resource, params)
            return self._read[resource]


def _id_order(record: Json, id_field: str) -> int:
    return int(record.get(id_field) or 0)


def _oldest(records: Iterable[Json], id_field: str, keep: Callable[[Json], bool]) -> Json | None:
    held = [r for r in records if keep(r) and not r.get("archived")]
    return min(held, key=lambda r: _id_order(r, id_field)) if held else None


class NameCreate(CreateStep):
    """A brand (Manufacturer), supplier (Vendor) or tag: `POST {"name"}` unless the store
    already holds the name (case-insensitively; a tag also ignoring spaces)."""

    ID_FIELDS: Mapping[str, str] = {
        "Manufacturer": "manufacturerID",
        "Vendor": "vendorID",
        "Tag": "tagID",
    }

    def __init__(self, id: int, change: Change, census: Census) -> None:
        super().__init__(id, f"create {change.kind} {change.key}", [change])
        self.kind = change.kind
        self.name = change.key
        self.resource = RESOURCES[change.kind]
        self.id_field = self.ID_FIELDS[self.resource]
        self.intent = (str(change.kind), change.key)
        self.census = census
        self.payload = {"name": self.name}
        self.priced(self.payload, "POST", self.resource, single=False)

    def _same(self, record: Json) -> bool:
        key = tag_key if self.kind is Kind.TAG else name_key
        return key(str(record.get("name") or "")) == key(self.name)

    def prepare(self, ids: Ids) -> None:
        self.payload = {"name": self.name}

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        found = _oldest(self.census.objects(client, self.resource), self.id_field, self._same)
        if found is not None:
            return {self.intent or ("", ""): str(found[self.id_field])}
        self.lookup_first = False  # the census was the look-up
        return super().run(client, counter)

    def send(self, client: RSeriesClient) -> Learned:
        made = client.create(self.resource, self.payload)
        return {(str(self.kind), self.name): str(made[self.id_field])}

    def lookup(self, client: RSeriesClient) -> Learned | None:
        params = {"name": self.name}
        if self.resource == "Vendor":
            params["archived"] = "true"
        found = _oldest(client.query(self.resource, params), self.id_field, self._same)
        return None if found is None else {(str(self.kind), self.name): str(found[self.id_field])}


class CategoryCreate(CreateStep):
    """One category under its parent (created first, by the step this one depends on):
    `POST Category {"name","parentID"}`, 10 units."""

    def __init__(self, id: int, change: Change, census: Census) -> None:
        super().__init__(id, f"create {change.kind} {change.key}", [change])
        self.path = label_path(change.key)
        self.label = f"create category {change.key}"
        self.key = change.key
        self.intent = (str(Kind.CATEGORY), change.key)
        self.census = census
        self.parent_id = "0"
        self.payload = {"name": self.path[-1], "parentID": "0"}
        self.priced(self.payload, "POST", "Category", single=False)

    def prepare(self, ids: Ids) -> None:
        if len(self.path) > 1:
            self.parent_id = ids.category(" / ".join(self.path[:-1]))
        self.payload = {"name": self.path[-1], "parentID": self.parent_id}

    def _same(self, record: Json) -> bool:
        return name_key(str(record.get("name") or "")) == name_key(self.path[-1]) and str(
            record.get("parentID") or 0
        ) == str(self.parent_id)

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        found = _oldest(self.census.objects(client, "Category"), "categoryID", self._same)
        if found is not None:
            return {(str(Kind.CATEGORY), self.key): str(found["categoryID"])}
        self.lookup_first = False
        return super().run(client, counter)

    def send(self, client: RSeriesClient) -> Learned:
        made = client.create("Category", self.payload)
        return {(str(Kind.CATEGORY), self.key): str(made["categoryID"])}

    def lookup(self, client: RSeriesClient) -> Learned | None:
        params = {"name": self.path[-1], "parentID": self.parent_id}
        found = _oldest(client.query("Category", params), "categoryID", self._same)
        return None if found is None else {(str(Kind.CATEGORY), self.key): str(found["categoryID"])}


class AttributeSetCreate(CreateStep):
    """The attribute set a new family's options need when no system set fits: found in the
    store (its named slots, in order, are the options) or `POST ItemAttributeSet`. Carries the
    plan's new variant attributes among its names."""

    def __init__(
        self, id: int, options: tuple[str, ...], changes: list[Change], census: Census
    ) -> None:
        super().__init__(id, f"create attribute set {'/'.join(options)}", changes)
        self.options = options
        self.key = options_key(options)
        self.intent = (SET, self.key)
        self.census = census
        slots = [*options, "", "", ""][:3]
        self.payload = {
            "name": "/".join(options),
            **{f"attributeName{n}": s for n, s in enumerate(slots, start=1)},
        }
        self.priced(self.payload, "POST", "ItemAttributeSet", single=False)

    def prepare(self, ids: Ids) -> None:
        return None

    def _learned(self, record: Json) -> Learned:
        set_id = str(record["itemAttributeSetID"])
        layout = [str(record.get(f"attributeName{n}") or "") for n in (1, 2, 3)]
        return {(SET, self.key): set_id, (LAYOUT, set_id): "\n".join(layout)}

    def _find(self, records: Iterable[Json]) -> Learned | None:
        for record in sorted(records, key=lambda r: _id_order(r, "itemAttributeSetID")):
            layout = [str(record.get(f"attributeName{n}") or "") for n in (1, 2, 3)]
            if not record.get("archived") and layout_matches(layout, self.options):
                return self._learned(record)
        return None

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        found = self._find(self.census.objects(client, "ItemAttributeSet"))
        if found is not None:
            return found
        self.lookup_first = False
        return super().run(client, counter)

    def send(self, client: RSeriesClient) -> Learned:
        try:
            made = client.create("ItemAttributeSet", self.payload)
        except ApiError as exc:
            if exc.status != 405:
                raise
            raise ApiError(
                f"The store refuses to create an attribute set for the options "
                f"{', '.join(self.options)} (405); give the family options a system set "
                "holds (Color and Size, Size, or Color), or create the set in Lightspeed first.",
                status=405,
            ) from None
        return self._learned(made)

    def lookup(self, client: RSeriesClient) -> Learned | None:
        return self._find(client.query("ItemAttributeSet"))


# -- items and matrices --------------------------------------------------------------------------


class Layouts:
    """The slot names of an existing family's attribute set, read once per matrix per apply
    when a body needs them (a variant added, or its options changed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, str, str]] = {}  # matrix id -> (set id, ...) layout
        self._sets: dict[str, str] = {}

    def of(self, client: RSeriesClient, matrix_id: str) -> tuple[str, tuple[str, str, str]]:
        with self._lock:
            if matrix_id not in self._known:
                record = (
                    client.read("ItemMatrix", matrix_id, load_relations=["ItemAttributeSet"]) or {}
                )
                held = record.get("ItemAttributeSet") or {}
                names = [str(held.get(f"attributeName{n}") or "") for n in (1, 2, 3)]
                self._known[matrix_id] = (names[0], names[1], names[2])
                self._sets[matrix_id] = str(record.get("itemAttributeSetID") or "0")
            return self._sets[matrix_id], self._known[matrix_id]


def _values(change: Change) -> dict[str, Json]:
    return {f.field: f.after for f in change.fields}


class MatrixCreate(CreateStep):
    """A new family's `ItemMatrix` (description, attribute set, brand, supplier, category,
    tags); its variants are each their own `ItemCreate` after it."""

    def __init__(self, id: int, change: Change, *, known_ids: frozenset[str]) -> None:
        super().__init__(id, f"create product {change.key}", [change])
        self.change = change
        self.values = _values(change)
        self.options = tuple(self.values.get("options") or ())
        self.skus = [c.key for c in change.children if c.kind is Kind.VARIANT]
        self.intent = (str(Kind.PRODUCT), change.key)
        self.known_ids = known_ids  # matrices of this name the plan saw: never ours
        self.set_id = "0"
        self.priced(self._body(Costing(_EMPTY_LIVE)), "POST", "ItemMatrix", single=False)

    def _body(self, ids: Ids) -> dict[str, Json]:
        self.set_id = ids.attribute_set(self.options)
        body: dict[str, Json] = {
            "description": self.values["name"],
            "itemAttributeSetID": self.set_id,
        }
        body.update(
            record_fields(
                {k: v for k, v in self.values.items() if k in ("brand", "supplier", "category")},
                ids,
                on="matrix",
            )
        )
        if self.values.get("tags"):
            body["Tags"] = {"tag": list(self.values["tags"])}
        return body

    def prepare(self, ids: Ids) -> None:
        self.payload = self._body(ids)

    def send(self, client: RSeriesClient) -> Learned:
        made = client.create("ItemMatrix", self.payload)
        return {(str(Kind.PRODUCT), self.change.key): str(made["itemMatrixID"])}

    def lookup(self, client: RSeriesClient) -> Learned | None:
        handle = self.change.key
        if self.skus:
            params = {"customSku": "IN," + json.dumps(self.skus[:100]), "archived": "true"}
            matrices = {
                str(i["itemMatrixID"])
                for i in client.query("Item", params)
                if str(i.get("itemMatrixID") or "0") != "0"
            }
            if len(matrices) > 1:
                raise ApiError(
                    f"The variants of {handle} are in {len(matrices)} families in the store "
                    f"(ItemMatrix {', '.join(sorted(matrices))}); move them into one there, "
                    "then rerun."
                )
            if matrices:
                return {(str(Kind.PRODUCT), handle): matrices.pop()}
        # No variant made yet: the matrix of exactly this description and set that the plan
        # did not see (the newest: ours).
        name = str(self.values["name"])
        held = [
            m
            for m in client.query("ItemMatrix", {"description": name, "archived": "true"})
            if str(m.get("description")) == name
            and str(m.get("itemAttributeSetID")) == self.set_id
            and str(m["itemMatrixID"]) not in self.known_ids
        ]
        if not held:
            return None
        newest = max(held, key=lambda m: _id_order(m, "itemMatrixID"))
        return {(str(Kind.PRODUCT), handle): str(newest["itemMatrixID"])}


class ItemCreate(CreateStep):
    """One new `Item`: a simple product, or a variant of a family (new, created by the step
    this one depends on, or existing: its attribute set is then read from the store)."""

    def __init__(
        self,
        id: int,
        change: Change,
        *,
        family_change: Change | None,
        layouts: Layouts,
        new_family: bool,
    ) -> None:
        what = "product" if family_change is None else "variant"
        where = "" if family_change is None else f" of {family_change.key}"
        super().__init__(id, f"create {what} {change.key}{where}", [change])
        self.change = change
        self.family_change = family_change
        self.layouts = layouts
        self.new_family = new_family
        self.values = _values(change)
        self.sku = str(self.values.get("sku") or "") if family_change is None else change.key
        self.intent = (str(change.kind), change.key)
        self.matrix_id = "0"
        self.attributes: dict[str, Json] | None = None
        costing = Costing(_EMPTY_LIVE)
        family = Family.of(family_change or change, costing.live)
        self.priced(self._body(costing, family), "POST", "Item", single=False)

    def _body(self, ids: Ids, family: Family) -> dict[str, Json]:
        values = self.values
        body: dict[str, Json] = {"customSku": self.sku}
        wide = {"brand": family.brand, "supplier": family.supplier, "category": family.category}
        if self.family_change is None:
            body["description"] = values.get("name")
            own = {k: v for k, v in values.items() if k in ("tags", "price", "supply_price")}
            on = "item"
        else:
            options = values.get("options") or {}
            body["description"] = variant_description(family.name, family.options, options)
            body["itemMatrixID"] = self.matrix_id
            body["ItemAttributes"] = {"itemAttributeSetID": "0"}
            own = {k: v for k, v in values.items() if k in ("price", "supply_price")}
            on = "variant"
        body.update(record_fields({k: v for k, v in wide.items() if v}, ids, on=on))
        body.update(record_fields(own, ids, on=on))
        if values.get("barcode"):
            body.update(barcode_fields(values["barcode"], clear_other=False))
        if family.supplier and family.supplier_code:
            body["ItemVendorNums"] = vendor_nums(family, ids)
        return body

    def prepare(self, ids: Ids) -> None:
        family = Family.of(self.family_change or self.change, ids.live)
        if self.family_change is not None:
            self.matrix_id = ids.product(self.family_change.key)
        self.payload = self._body(ids, family)
        if self.family_change is not None and self.new_family:
            set_id = ids.attribute_set(family.options)
            layout = ids.layouts.get(set_id, ("", "", ""))
            self.attributes = item_attributes(set_id, layout, self.values.get("options") or {})
            self.payload["ItemAttributes"] = self.attributes

    def send(self, client: RSeriesClient) -> Learned:
        if self.family_change is not None and self.attributes is None:
            set_id, layout = self.layouts.of(client, self.matrix_id)
            self.attributes = item_attributes(set_id, layout, self.values.get("options") or {})
            self.payload["ItemAttributes"] = self.attributes
        made = client.create("Item", self.payload)
        return self._learned(str(made["itemID"]))

    def _learned(self, item_id: str) -> Learned:
        out: Learned = {(str(Kind.VARIANT), self.sku): item_id}
        if self.family_change is None:
            out[(str(Kind.PRODUCT), self.change.key)] = item_id
        return out

    def lookup(self, client: RSeriesClient) -> Learned | None:
        if not self.sku:
            return None
        held = [
            i
            for i in client.query("Item", {"customSku": self.sku, "archived": "true"})
            if str(i.get("customSku")) == self.sku
        ]
        if not held:
            return None
        item = min(held, key=lambda i: _id_order(i, "itemID"))
        if str(item.get("itemMatrixID") or "0") != str(self.matrix_id):
            raise ApiError(
                f'SKU "{self.sku}" already belongs to another item in the store (item '
                f"{item['itemID']}); move or remove it there, then rerun."
            )
        return self._learned(str(item["itemID"]))


class RecordPut(Step):
    """One PUT of an Item or an ItemMatrix with exactly its changed fields (`on`: "matrix",
    "item" for a simple product, "variant"); for an item the catalog makes inactive, the
    archive (`DELETE`, which zeroes its stock) follows it."""

    def __init__(
        self,
        id: int,
        label: str,
        changes: list[Change],
        *,
        on: str,
        target: Change,
        values: Mapping[str, Json],
        family_change: Change,
        row_options: Mapping[str, Json] | None = None,
        layouts: Layouts | None = None,
        archive: bool = False,
    ) -> None:
        super().__init__(id, label + (f" ({ZEROES_STOCK})" if archive else ""), changes)
        self.on = on
        self.resource = "ItemMatrix" if on == "matrix" else "Item"
        self.target = target
        self.values = dict(values)
        self.family_change = family_change
        self.row_options = dict(row_options or {})
        self.layouts = layouts
        self.archive = archive
        self.zeroes_stock = archive
        self.remote_id: str | None = target.remote_id
        self.matrix_id: str | None = None
        costing = Costing(_EMPTY_LIVE)
        body = self._body(costing, Family.of(family_change, costing.live))
        self.requests = int(bool(body)) + int(archive)
        self.cost = (cost_of("PUT", self.resource, body, single=True) if body else 0.0) + (
            cost_of("DELETE", self.resource, None, single=True) if archive else 0.0
        )

    def _body(self, ids: Ids, family: Family) -> dict[str, Json]:
        plain = {k: v for k, v in self.values.items() if k not in ("supplier_code", "options")}
        body = record_fields(plain, ids, on=self.on)
        if self.on == "variant":
            if "name" in self.values or "options" in self.values:
                body["description"] = variant_description(
                    family.name, family.options, self.row_options
                )
            if "options" in self.values:
                body["ItemAttributes"] = {"itemAttributeSetID": "0"}
        if self.on != "matrix" and ("supplier_code" in self.values or "supplier" in self.values):
            nums = vendor_nums(family, ids)
            if nums is not None:
                body["ItemVendorNums"] = nums
        return body

    def prepare(self, ids: Ids) -> None:
        if self.remote_id is None:  # made earlier in this apply
            key = self.target.key
            kind = self.target.kind
            self.remote_id = ids.rows.get(key) if kind is Kind.VARIANT else ids.products.get(key)
        if self.remote_id is None:
            raise CatalogError(f"{self.target.kind} {self.target.key} has no id in the store")
        self.matrix_id = ids.products.get(self.family_change.key)
        self.payload = self._body(ids, Family.of(self.family_change, ids.live))

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        assert self.remote_id is not None
        body = dict(self.payload or {})
        if "ItemAttributes" in body and self.matrix_id and self.layouts is not None:
            set_id, layout = self.layouts.of(client, self.matrix_id)
            body["ItemAttributes"] = item_attributes(set_id, layout, self.row_options)
        if body:
            counter.add()
            client.update(self.resource, self.remote_id, body)
        if self.archive:
            counter.add()
            archive(client, self.resource, self.remote_id)
        return {}


def archive(client: RSeriesClient, resource: str, remote_id: str) -> None:
    """DELETE: archives an Item (zeroing its stock) or an ItemMatrix and its items. Already
    archived or gone is done (a retry after a lost answer)."""
    try:
        client.delete(resource, remote_id)
    except ApiError as exc:
        if exc.status != 404:
            raise


class Archive(Step):
    """`DELETE Item` or `DELETE ItemMatrix`: the catalog's prune (or a new item the catalog
    declares inactive). R-Series cannot delete an item: it archives it, and zeroes its stock."""

    def __init__(
        self,
        id: int,
        label: str,
        changes: list[Change],
        *,
        resource: str,
        target: Change,
        new: bool = False,
    ) -> None:
        # A new item has no stock yet: archiving it right after its create loses nothing.
        super().__init__(id, label if new else f"{label} ({ZEROES_STOCK})", changes)
        self.resource = resource
        self.target = target
        self.remote_id = target.remote_id
        self.zeroes_stock = not new
        self.cost = cost_of("DELETE", resource, None, single=True)

    def prepare(self, ids: Ids) -> None:
        if self.remote_id is None:
            self.remote_id = ids.rows.get(self.target.key) or ids.products.get(self.target.key)
        if self.remote_id is None:
            raise CatalogError(f"{self.target.kind} {self.target.key} has no id in the store")
        self.payload = {"resource": self.resource, "id": self.remote_id}

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        assert self.remote_id is not None
        counter.add()
        archive(client, self.resource, self.remote_id)
        return {}


# -- images ---------------------------------------------------------------------------------------


class ImageUpload(CreateStep):
    """One image of a family (on its ItemMatrix) or of a simple product (on its Item), read
    from the catalog directory and uploaded multipart with `ordering` = its position - 1.

    The store keeps every upload (no de-duplication), so this is an intent-guarded create:
    after a lost answer, or a crashed run's intent, the owner's images are read and one with
    this file's name and size that no record of ours names is taken as this upload."""

    def __init__(
        self, id: int, change: Change, handle: str, *, family: bool, catalog_dir: Path | None
    ) -> None:
        super().__init__(id, f"upload image {change.key} to {handle}", [change])
        self.change = change
        self.handle = handle
        self.catalog_dir = catalog_dir
        self.content = b""
        self.position = int(_values(change).get("position") or 1)
        self.intent = (str(Kind.IMAGE), f"{handle}:{change.key}")
        self.owner = "ItemMatrix" if family else "Item"
        self.owner_id = "0"
        self.recorded: set[str] = set()

    def prepare(self, ids: Ids) -> None:
        self.owner_id = ids.product(self.handle)
        self.content, kind = read_image(self.catalog_dir, self.change.key)
        self.payload = {
            "owner": self.owner,
            "owner_id": self.owner_id,
            "path": self.change.key,
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "media_type": f"image/{kind}",
            "ordering": self.position - 1,
        }

    def before_send(self, ledger: Ledger) -> None:
        # What this family's record already names is never taken for this upload; and should
        # the answer be lost, the family still has a record (its images are ours, not unknown).
        self.recorded = {str(r["image_id"]) for r in ledger.images(self.handle) if r["image_id"]}
        ledger.note_image_sent(
            handle=self.handle,
            path=self.change.key,
            sha256=self.payload["sha256"],
            product_id=self.owner_id,
            position=self.position,
        )

    def send(self, client: RSeriesClient) -> Learned:
        made = client.upload_image(
            self.owner,
            self.owner_id,
            filename=PurePosixPath(self.change.key).name,
            content=self.content,
            media_type=self.payload["media_type"],
            ordering=self.position - 1,
        )
        return self._learned(str(made["imageID"]))

    def _learned(self, image_id: str) -> Learned:
        return {(str(Kind.IMAGE), self.change.key): image_id, self.intent or ("", ""): image_id}

    def lookup(self, client: RSeriesClient) -> Learned | None:
        owner_field = "itemMatrixID" if self.owner == "ItemMatrix" else "itemID"
        name = PurePosixPath(self.change.key).name
        held = [
            i
            for i in client.query("Image", {owner_field: self.owner_id})
            if str(i.get("filename")) == name
            and int(i.get("size") or 0) == len(self.content)
            and str(i["imageID"]) not in self.recorded
        ]
        if not held:
            return None
        return self._learned(str(min(held, key=lambda i: _id_order(i, "imageID"))["imageID"]))

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        ledger.record_image(
            handle=self.handle,
            path=self.change.key,
            sha256=self.payload["sha256"],
            image_id=learned[(str(Kind.IMAGE), self.change.key)],
            product_id=self.owner_id,
            position=self.position,
        )


class ImageMove(Step):
    """`PUT Image/{id} {"ordering"}`: an image the catalog moved."""

    def __init__(self, id: int, change: Change, handle: str) -> None:
        super().__init__(id, f"move image {change.key} of {handle}", [change])
        self.change = change
        self.position = int(_values(change)["position"])
        self.payload = {"ordering": str(self.position - 1)}
        self.priced(self.payload, "PUT", "Image", single=True)

    def prepare(self, ids: Ids) -> None:
        self.payload = {"ordering": str(self.position - 1)}

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        client.update("Image", self.change.remote_id, self.payload)
        return {}

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        assert self.change.remote_id is not None
        ledger.set_image_position(self.change.remote_id, self.position)


class ImageDelete(Step):
    """`DELETE Image/{id}`: an image this tool uploaded that the catalog dropped."""

    def __init__(self, id: int, change: Change, handle: str) -> None:
        super().__init__(id, f"delete {change.key} of {handle}", [change])
        self.change = change
        self.cost = cost_of("DELETE", "Image", None, single=True)

    def prepare(self, ids: Ids) -> None:
        self.payload = {"id": self.change.remote_id}

    def run(self, client: RSeriesClient, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        try:
            client.delete("Image", self.change.remote_id)
        except ApiError as exc:
            if exc.status != 404:  # already gone: done
                raise
        return {}

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        assert self.change.remote_id is not None
        ledger.forget_image(self.change.remote_id)
