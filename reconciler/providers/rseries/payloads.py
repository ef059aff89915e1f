"""R-Series request bodies from plan changes (lightspeed-rseries.md §7, §9), and `Ids`, which
resolves the names, categories, attribute sets, families and SKUs a body references to the
store's ids (seeded from `Live`, taught by the engine as creates finish).

Apart from `steps.py` because the steps need these and the compile needs the steps.

Bodies carry only what changed: PUT merges (an omitted field is kept), so one PUT per changed
record with exactly its changed fields is the fewest requests and the smallest cost. Every
scalar is sent as the string the store keeps; money at the store's 2 places.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reconciler.errors import Unresolved
from reconciler.live import Live, family_values
from reconciler.model import Json, name_key
from reconciler.plan import Change, Kind
from reconciler.providers import ids as shared
from reconciler.providers.rseries.normalize import DEFAULT_PRICE_LEVEL, store_money

# The system attribute sets every account holds (recorded in
# reference/rseries/lightspeed_pos/account/ItemAttributeSet/index.yml): id -> slot names.
# "Size" alone is set 2, slot 2.
SYSTEM_SETS: Mapping[str, tuple[str, str, str]] = {
    "1": ("Color", "Size", ""),
    "2": ("", "Size", ""),
    "3": ("Color", "", ""),
}
SET = "ItemAttributeSet"  # the learned kind of an attribute set, keyed by `options_key`
LAYOUT = "ItemAttributeSet:layout"  # learned: set id -> its slot names joined by "\n"


def options_key(options: Sequence[str]) -> str:
    """An options list as one key: names compared ignoring case, order kept."""
    return "\n".join(name_key(o) for o in options)


def layout_matches(layout: Sequence[str], options: Sequence[str]) -> bool:
    """Whether a set's named slots, in order, are exactly `options` (ignoring case)."""
    return [name_key(n) for n in layout if n] == [name_key(o) for o in options]


def system_set(options: Sequence[str]) -> str | None:
    for set_id, layout in SYSTEM_SETS.items():
        if layout_matches(layout, options):
            return set_id
    return None


class Ids(shared.Ids):
    """Name -> id, path -> id, options -> attribute set, handle/SKU -> id for everything a body
    may reference (`providers.ids.Ids`): brands and suppliers by name, attribute sets by their
    options."""

    def __init__(self, live: Live) -> None:
        super().__init__(live)
        self.sets: dict[str, str] = {}
        self.layouts: dict[str, tuple[str, str, str]] = dict(SYSTEM_SETS)

    def attribute_set(self, options: Sequence[str]) -> str:
        found = system_set(options) or self.sets.get(options_key(options))
        if found is None:
            raise Unresolved(
                f"no attribute set holds the options {', '.join(options)} (its create failed)"
            )
        return found

    def product(self, handle: str) -> str:
        found = self.products.get(handle)
        if found is None:
            raise Unresolved(f"product {handle} does not exist in the store (its create failed)")
        return found

    def learn_other(self, kind: str, key: str, remote_id: str) -> None:
        if kind == SET:
            self.sets[key] = remote_id
        elif kind == LAYOUT:
            a, b, c = [*remote_id.split("\n"), "", "", ""][:3]
            self.layouts[key] = (a, b, c)


class Costing(Ids):
    """Resolves every reference to "0": the body's shape (what its cost depends on) without
    the ids, so the compile can price a step before anything it needs exists."""

    def name(self, kind: Kind, name: str) -> str:
        return "0"

    def category(self, label: str) -> str:
        return "0"

    def attribute_set(self, options: Sequence[str]) -> str:
        return "0"

    def product(self, handle: str) -> str:
        return "0"


# -- the family as it will be once this plan's family-wide changes are applied -----------------


@dataclass(frozen=True)
class Family:
    """What an item's body needs to know of its family (or a simple product of itself), as
    it will be once this plan's changes to it are applied."""

    handle: str
    name: str
    brand: str | None
    supplier: str | None
    supplier_code: str | None
    category: str | None
    options: tuple[str, ...]

    @staticmethod
    def of(change: Change, live: Live) -> Family:
        after = {f.field: f.after for f in change.fields}
        found = live.products.get(change.key)
        current = family_values(found.product, declared_only=False) if found else {}
        merged = {**current, **after}
        return Family(
            handle=change.key,
            name=str(merged.get("name") or ""),
            brand=merged.get("brand") or None,
            supplier=merged.get("supplier") or None,
            supplier_code=merged.get("supplier_code"),
            category=merged.get("category") or None,
            options=tuple(merged.get("options") or ()),
        )


def money(value: Json) -> str:
    """A catalog amount as the store keeps it: text at 2 places."""
    return str(store_money(Decimal(str(value))))


def prices(value: Json) -> dict[str, Json]:
    # Only the Default level (useTypeID 1) is the catalog's price; `useType` is a renamable
    # level name, so the id is what is sent.
    return {"ItemPrice": [{"amount": money(value), "useTypeID": str(DEFAULT_PRICE_LEVEL)}]}


def barcode_fields(code: Json, *, clear_other: bool) -> dict[str, Json]:
    """A barcode as `upc` (12 digits, UPC-A) or `ean` (the other lengths R-Series holds); on
    an update the other field is cleared, so the store holds one barcode, as the catalog."""
    text = "" if code is None else str(code)
    field = "upc" if len(text) == 12 else "ean"
    out: dict[str, Json] = {field: text}
    if clear_other:
        out["ean" if field == "upc" else "upc"] = ""
    return out


def vendor_nums(family: Family, ids: Ids) -> dict[str, Json] | None:
    """The item's supplier code for the family's supplier (`ItemVendorNums`), None when the
    family has no supplier to hold it."""
    if not family.supplier:
        return None
    entry = {"vendorID": ids.name(Kind.SUPPLIER, family.supplier), "value": family.supplier_code}
    return {"ItemVendorNum": [{k: v if v is not None else "" for k, v in entry.items()}]}


def variant_description(name: str, options: Sequence[str], values: Mapping[str, Json]) -> str:
    """A variant's description as the store makes it: the family's name and its values in
    slot order (lightspeed-rseries.md §7.2)."""
    by_key = {name_key(k): str(v) for k, v in values.items()}
    parts = [by_key.get(name_key(o), "") for o in options]
    return " ".join([name, *(p for p in parts if p)])


def item_attributes(
    set_id: str, layout: Sequence[str], values: Mapping[str, Json]
) -> dict[str, Json]:
    """`ItemAttributes`: each option's value in the slot the set names it."""
    by_key = {name_key(k): str(v) for k, v in values.items()}
    out: dict[str, Json] = {"itemAttributeSetID": set_id}
    for slot, name in enumerate(layout, start=1):
        if name and name_key(name) in by_key:
            out[f"attribute{slot}"] = by_key[name_key(name)]
    return out


def _ref(value: Json, resolve: str) -> str:
    return resolve if value else "0"


def record_fields(values: Mapping[str, Json], ids: Ids, *, on: str) -> dict[str, Json]:
    """The catalog fields an Item or ItemMatrix holds as its own scalars and relations:
    name (simple items and matrices), brand, supplier, category, tags, price, supply price,
    barcode, and `active` restored. `on` is "matrix", "item" (simple) or "variant"."""
    out: dict[str, Json] = {}
    for name, value in values.items():
        if name == "name" and on != "variant":
            out["description"] = value
        elif name == "brand":
            out["manufacturerID"] = _ref(value, value and ids.name(Kind.BRAND, value))
        elif name == "supplier":
            out["defaultVendorID"] = _ref(value, value and ids.name(Kind.SUPPLIER, value))
        elif name == "category":
            out["categoryID"] = _ref(value, value and ids.category(value))
        elif name == "tags" and on != "variant":
            out["Tags"] = {"tag": list(value or [])}
        elif name == "price" and value is not None and on != "matrix":
            out["Prices"] = prices(value)
        elif name == "supply_price" and value is not None and on != "matrix":
            out["defaultCost"] = money(value)
        elif name == "barcode" and value is not None and on != "matrix":
            out.update(barcode_fields(value, clear_other=True))
        elif name == "active" and value is True and on != "matrix":
            out["archived"] = "false"  # PUT restores an archived item; it cannot archive
    return out


def tag_names(body: Json) -> list[str]:
    tags = body.get("Tags") if isinstance(body, dict) else None
    return list(tags.get("tag") or []) if isinstance(tags, dict) else []
