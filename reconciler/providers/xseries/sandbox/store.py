"""The sandbox store: an X-Series retailer's catalog with the real store's rules and answers.

Methods take and return JSON-shaped values (the `data` of a response, or a whole envelope where
the endpoint has its own shape) and raise `StoreRefusal` for the store's refusals. Every method runs
under one lock and one SQLite transaction, so concurrent requests from many threads see a
consistent store and a refused request changes nothing.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.rules import MAX_IMAGE_BYTES, MAX_IMAGES_PER_PRODUCT, sniff_image

if TYPE_CHECKING:
    from starlette.types import ASGIApp

from reconciler.providers.sandbox_traffic import TrafficControl, Verdict
from reconciler.providers.xseries.sandbox.db import Doc, Objects, name_key
from reconciler.providers.xseries.sandbox.errors import (
    StoreRefusal,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from reconciler.providers.xseries.sandbox.fields import (
    DIMENSIONS,
    decimal_text,
    dimensions,
    json_object,
    named_extras,
    number_field,
    optional_str,
    product_codes_of,
    required_name,
    same_values,
    section,
    sku_from_codes,
    slug,
    supplier_details,
)
from reconciler.providers.xseries.sandbox.images import (
    PLACEHOLDER_PNG,
)
from reconciler.providers.xseries.sandbox.traffic import Faults, RateLimit, Traffic
from reconciler.providers.xseries.sandbox.views import (
    CategoryTree,
    Lookups,
    envelope,
    image_sample,
    money,
    render_attribute,
    render_image,
)

JSON = dict[str, Any]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
MAX_ATTRIBUTES = 3
MAX_VARIANTS = 200
_FIVE_PLACES = Decimal("0.00001")
# Fixed ids for the seeded objects, so a reset store looks the same every time.
_SEED_NS = uuid.UUID("6f1c3c52-5d8e-4c3b-9a51-8a0f3c1d2e4b")


def _seed_id(name: str) -> str:
    return str(uuid.uuid5(_SEED_NS, name))


RETAILER_ID = _seed_id("retailer")
OUTLET_ID = _seed_id("outlet:main")
DEFAULT_TAX_ID = _seed_id("tax:gst")
NO_TAX_ID = _seed_id("tax:none")
DEFAULT_TAX_RATE = Decimal("0.15")


@dataclass(frozen=True)
class ListQuery:
    """The paging parameters every 2.0 list endpoint shares."""

    after: int | None = None
    before: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    deleted: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        return cls(
            after=_int_param(params, "after"),
            before=_int_param(params, "before"),
            page_size=min(
                _int_param(params, "page_size", minimum=1) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
            ),
            deleted=bool_param(params, "deleted"),
        )


def _int_param(params: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Query parameter {name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise bad_request(f"Query parameter {name} must be at least {minimum}")
    return value


def bool_param(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw.lower() in ("", "false", "0"):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise bad_request(f"Query parameter {name} must be true or false, not {raw!r}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _new_id() -> str:
    return str(uuid.uuid4())


class SandboxStore(TrafficControl[Faults, RateLimit]):
    """An X-Series store in SQLite (a file, or memory) plus the traffic rules in front of it."""

    traffic: Traffic

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        token: str = "sandbox-token",
        tax_exclusive: bool = False,
        registers: int = 1,
        rate_limit: RateLimit | str | None = "xseries",
        latency_ms: int = 0,
        fault_rate: float = 0.0,
        timeout_rate: float = 0.0,
        burst_429_rate: float = 0.0,
        image_processing_seconds: float = 0.2,
        seed: int | None = None,
        timeout_hold_seconds: float = 30.0,
    ) -> None:
        self.token = token
        self.tax_exclusive = tax_exclusive
        self.registers = registers
        self.image_processing_seconds = image_processing_seconds
        # Over a socket, commit-then-timeout holds the response until the client hangs up or
        # this many seconds pass, whichever is first.
        self.timeout_hold_seconds = timeout_hold_seconds
        self._lock = threading.RLock()
        self._db = Objects(path, rng=random.Random(seed))
        self._pending_images: list[tuple[float, str]] = []
        self.traffic = Traffic(
            Faults(
                fault_rate=fault_rate,
                timeout_rate=timeout_rate,
                burst_429_rate=burst_429_rate,
                latency_ms=latency_ms,
                rate_limit=self._limit(rate_limit),
            ),
            seed=seed,
        )
        with self._lock, self._db.transaction():
            if self._db.is_empty():
                self._seed()
            self._load_pending_images()

    # -- control (mirrors /_sandbox/) -------------------------------------------------------

    def _limit(self, value: RateLimit | str | None) -> RateLimit | None:
        if isinstance(value, str):
            return RateLimit.parse(value, registers=self.registers)
        return value

    def reset(self) -> None:
        """Wipe the data back to the seed and forget counts and rate-limit history.
        Fault settings are kept: they describe the environment, not the store's contents."""
        with self._lock:
            self._db.wipe()
            with self._db.transaction():
                self._seed()
            self._pending_images = []
            self.traffic.reset()

    def admit(self, *, method: str, route: str, authorization: str | None) -> Verdict:
        return self.traffic.admit(
            method=method, route=route, authorized=authorization == f"Bearer {self.token}"
        )

    def close(self) -> None:
        self._db.close()

    def build_app(self) -> ASGIApp:
        """The X-Series API over this store (what `reconciler.providers.asgi` serves)."""
        from reconciler.providers.xseries.sandbox.app import build_app

        return build_app(self)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock:
            if self._pending_images and not self._db.in_transaction:
                # Processing that is due settles in a transaction of its own: settling inside
                # the request's would be rolled back with a refused request, after the pending
                # list had already let go of the image, leaving it `processing` for good.
                with self._db.transaction():
                    self._settle_images()
            with self._db.transaction():
                yield

    # -- seed --------------------------------------------------------------------------------

    def _seed(self) -> None:
        now = _now()
        db = self._db
        db.put(
            "tax",
            {
                "id": DEFAULT_TAX_ID,
                "name": "GST",
                "display_name": "GST",
                "rates": [
                    {
                        "id": _seed_id("rate:gst"),
                        "name": "GST",
                        "display_name": "GST",
                        "rate": float(DEFAULT_TAX_RATE),
                    }
                ],
                "is_default": True,
                "deleted_at": None,
            },
        )
        db.put(
            "tax",
            {
                "id": NO_TAX_ID,
                "name": "No Tax",
                "display_name": "No Tax",
                "rates": [
                    {
                        "id": _seed_id("rate:none"),
                        "name": "No Tax",
                        "display_name": "No Tax",
                        "rate": 0,
                    }
                ],
                "is_default": False,
                "deleted_at": None,
            },
        )
        db.put(
            "outlet",
            {
                "id": OUTLET_ID,
                "name": "Main Outlet",
                "time_zone": "Pacific/Auckland",
                "default_tax_id": DEFAULT_TAX_ID,
                "currency": "NZD",
                "currency_symbol": "$",
                "display_prices": "exclusive" if self.tax_exclusive else "inclusive",
                "physical_city": "Auckland",
                "physical_country_id": "NZ",
                "attributes": [],
                "deleted_at": None,
            },
        )
        db.set_meta("sku_sequence", "10000")
        db.set_meta("created_at", now)

    def _load_pending_images(self) -> None:
        self._pending_images = [
            (float(doc["ready_at"]), doc["id"])
            for doc in self._db.page("image")
            if doc["status"] == "processing"
        ]

    # -- retailer, outlets, taxes ------------------------------------------------------------

    def retailer(self) -> JSON:
        with self._tx():
            created = self._db.meta("created_at") or _now()
            return {
                "id": RETAILER_ID,
                "name": "Sandbox Store",
                "domain_prefix": "sandbox",
                "store_url": "sandbox.retail.lightspeed.app",
                "account_status": "ACTIVE",
                "account_type": "SANDBOX",
                "culture": "en-NZ",
                "country": "NZ",
                "timezone": {"name": "Pacific/Auckland"},
                "currency": {"code": "NZD", "symbol": "$"},
                "tax_exclusive": self.tax_exclusive,
                "sku_sequence": {"enabled": True, "value": int(self._db.meta("sku_sequence") or 0)},
                "loyalty": {
                    "enabled": False,
                    "ratio": 0,
                    "claim_url": "",
                    "send_welcome_email": False,
                },
                "store_credit": False,
                "gift_cards": {"enabled": False, "never_enabled": True},
                # The published Retailer schema types `version` as a string.
                "version": self._db.meta("version") or "0",
                "created_at": created,
                "activated_at": created,
            }

    def list_plain(self, kind: str, query: ListQuery) -> JSON:
        """A 2.0 collection of objects stored as served: outlets, taxes, brands, suppliers, tags."""
        with self._tx():
            return envelope(self._page(kind, query))

    def get_plain(self, kind: str, id: str) -> JSON:
        with self._tx():
            doc = self._db.get(kind, id)
            if doc is None:
                raise not_found(kind, id)
            return doc

    def _page(self, kind: str, query: ListQuery) -> list[Doc]:
        return self._db.page(
            kind,
            after=query.after,
            before=query.before,
            limit=query.page_size,
            include_deleted=query.deleted,
        )

    # -- brands, suppliers, tags -------------------------------------------------------------

    def create_named(self, kind: str, body: object) -> str:
        """Create a brand, supplier or tag. Names need not be unique (as in the real API)."""
        fields = json_object(body)
        with self._tx():
            now = _now()
            doc: Doc = {"id": _new_id(), "name": required_name(fields), "deleted_at": None}
            doc.update(named_extras(kind, fields, None))
            doc["created_at"] = now
            doc["updated_at"] = now
            self._db.put(kind, doc)
            return str(doc["id"])

    def update_named(self, kind: str, id: str, body: object) -> Doc:
        fields = json_object(body)
        with self._tx():
            doc = self._db.get(kind, id)
            if doc is None:
                raise not_found(kind, id)
            new = dict(doc)
            if "name" in fields:
                new["name"] = required_name(fields)
            new.update(named_extras(kind, fields, doc))
            if new != doc:
                new["updated_at"] = _now()
                self._db.put(kind, new)
            return new

    def delete_named(self, kind: str, id: str) -> str:
        with self._tx():
            doc = self._db.get(kind, id)
            if doc is None:
                raise not_found(kind, id)
            self._soft_delete(kind, doc)
            return _new_id()  # the real API answers with a background job id

    def _soft_delete(self, kind: str, doc: Doc) -> None:
        now = _now()
        doc["deleted_at"] = now
        doc["updated_at"] = now
        self._db.put(kind, doc)

    # -- variant attributes ------------------------------------------------------------------

    def list_attributes(self, *, deleted: bool) -> list[JSON]:
        with self._tx():
            return [
                render_attribute(d) for d in self._db.page("attribute", include_deleted=deleted)
            ]

    def get_attribute(self, id: str) -> JSON:
        with self._tx():
            return render_attribute(self._attribute(id))

    def _attribute(self, id: str) -> Doc:
        doc = self._db.get("attribute", id)
        if doc is None:
            raise not_found("variant attribute", id)
        return doc

    def create_attribute(self, body: object) -> JSON:
        fields = json_object(body)
        with self._tx():
            name = required_name(fields)
            self._check_attribute_name(name, None)
            now = _now()
            doc: Doc = {"id": _new_id(), "name": name, "created_at": now, "updated_at": now}
            doc["deleted_at"] = None
            self._db.put("attribute", doc)
            return {k: doc[k] for k in ("id", "name", "created_at", "updated_at")}

    def update_attribute(self, id: str, body: object) -> JSON:
        fields = json_object(body)
        with self._tx():
            doc = self._attribute(id)
            name = required_name(fields)
            self._check_attribute_name(name, id)
            if name != doc["name"]:
                doc["name"] = name
                doc["updated_at"] = _now()
                self._db.put("attribute", doc)
            return {"id": doc["id"], "name": doc["name"]}

    def _check_attribute_name(self, name: str, own_id: str | None) -> None:
        key = name_key(name) or ""
        for other in self._db.where("attribute", "name_key", key):
            if other["id"] != own_id:
                raise invalid(
                    {
                        "name": "A variant attribute with this name already exists",
                        "name_existing_id": other["id"],
                    }
                )

    def delete_attribute(self, id: str) -> JSON:
        with self._tx():
            doc = self._attribute(id)
            for product in self._db.page("product"):
                if id in product["attribute_ids"]:
                    raise conflict(
                        f"Variant attribute {doc['name']!r} is used by product "
                        f"{product['name']!r}; remove it from the family first"
                    )
            self._soft_delete("attribute", doc)
            return {"id": id}

    # -- product categories and product types ------------------------------------------------

    def list_categories(
        self,
        *,
        parent: str | None,
        include: str | None,
        page_size: int | None,
        after: str | None,
    ) -> JSON:
        """The categories endpoint's own shape: ordered by id, paged by `after=<last id>`."""
        if include not in (None, "", "family", "children"):
            raise bad_request("Query parameter include must be family or children")
        with self._tx():
            tree = CategoryTree(self._db.page("category", include_deleted=True))
            if parent:
                if tree.alive(parent) is None:
                    raise not_found("product category", parent)
                if include == "children":
                    chosen = tree.children(parent)
                else:
                    chosen = tree.descendants(parent)
                    if include == "family":
                        chosen = [parent, *chosen]
            else:
                chosen = tree.alive_ids()
            ids = sorted(i for i in chosen if not after or i > after)
            size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            page = ids[:size]
            return {
                "data": {"categories": [tree.render(i) for i in page]},
                "page_info": {"has_next": len(ids) > size, "last_seen": page[-1] if page else ""},
            }

    def bulk_categories(self, body: object) -> JSON:
        """Create (no `id`) and rename or move (with `id`) categories in one call. New ones
        may refer to each other through `payload_id` / `payload_parent_category_id`."""
        fields = json_object(body)
        items = fields.get("categories")
        if not isinstance(items, list) or not items:
            raise invalid({"categories": "A non-empty list of categories is required"})
        with self._tx():
            docs = {d["id"]: d for d in self._db.page("category", include_deleted=True)}
            by_payload: dict[str, str] = {}
            answer: list[JSON] = []
            errors: dict[str, str] = {}
            now = _now()
            for index, item in enumerate(items):
                where = f"categories[{index}]"
                if not isinstance(item, dict):
                    errors[where] = "Each category must be an object"
                    continue
                existing_id = item.get("id")
                if existing_id is not None:
                    doc = docs.get(existing_id) if isinstance(existing_id, str) else None
                    if doc is None or doc["deleted_at"]:
                        errors[f"{where}.id"] = f"No product category with id {existing_id!r}"
                        continue
                    doc = dict(doc)
                else:
                    doc = {"id": _new_id(), "created_at": now, "deleted_at": None}
                    doc["parent_category_id"] = None
                name = item.get("name", doc.get("name"))
                if not isinstance(name, str) or not name.strip():
                    errors[f"{where}.name"] = "Name is required"
                    continue
                doc["name"] = name.strip()
                parent = item.get("parent_category_id")
                payload_parent = item.get("payload_parent_category_id")
                if payload_parent is not None:
                    parent = by_payload.get(str(payload_parent))
                    if parent is None:
                        errors[f"{where}.payload_parent_category_id"] = (
                            f"No category in this request has payload_id {payload_parent!r}"
                        )
                        continue
                if parent is not None:
                    target = docs.get(parent) if isinstance(parent, str) else None
                    if target is None or target["deleted_at"]:
                        errors[f"{where}.parent_category_id"] = f"No product category {parent!r}"
                        continue
                    if CategoryTree(list(docs.values())).is_within(str(parent), doc["id"]):
                        errors[f"{where}.parent_category_id"] = (
                            "A category cannot be its own ancestor"
                        )
                        continue
                    doc["parent_category_id"] = parent
                doc["updated_at"] = now
                docs[doc["id"]] = doc
                if isinstance(item.get("payload_id"), str):
                    by_payload[item["payload_id"]] = doc["id"]
                entry: JSON = {"id": doc["id"], "name": doc["name"]}
                if doc["parent_category_id"]:
                    entry["parent_category_id"] = doc["parent_category_id"]
                if isinstance(item.get("payload_id"), str):
                    entry["payload_id"] = item["payload_id"]
                answer.append(entry)
            if errors:
                raise invalid(errors)
            for entry in answer:
                self._db.put("category", docs[entry["id"]])
            return {"data": answer}

    def delete_categories(self, body: object) -> JSON:
        """Delete categories and everything under them; their products lose the category."""
        fields = json_object(body)
        ids = fields.get("category_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise invalid({"category_ids": "A non-empty list of category ids is required"})
        with self._tx():
            tree = CategoryTree(self._db.page("category", include_deleted=True))
            for id in ids:
                if tree.alive(id) is None:
                    raise not_found("product category", id)
            doomed: list[str] = []
            for id in ids:
                for each in (id, *tree.descendants(id)):
                    if each not in doomed:
                        doomed.append(each)
            for id in doomed:
                doc = self._db.get("category", id)
                if doc is not None:
                    self._soft_delete("category", doc)
            for product in self._db.page("product"):
                if product["product_category_id"] in doomed:
                    product["product_category_id"] = None
                    product["updated_at"] = _now()
                    self._db.put("product", product)
            return {"data": {"categories": [{"ids": doomed, "job_id": _new_id()}]}}

    def list_product_types(self, query: ListQuery) -> JSON:
        with self._tx():
            tree = CategoryTree(self._db.page("category", include_deleted=True))
            docs = self._page("category", query)
            return envelope([tree.render_type(d["id"]) for d in docs], docs)

    def get_product_type(self, id: str) -> JSON:
        with self._tx():
            tree = CategoryTree(self._db.page("category", include_deleted=True))
            if tree.alive(id) is None:
                raise not_found("product type", id)
            return tree.render_type(id)

    # -- products: reads ---------------------------------------------------------------------

    def list_products(self, query: ListQuery, *, base_url: str) -> JSON:
        with self._tx():
            docs = self._page("product", query)
            return envelope(self._render_products(docs, base_url), docs)

    def products_by_sku(self, sku: str, *, base_url: str) -> JSON:
        """`?sku=` lookup: live products with exactly this SKU; other parameters are ignored."""
        with self._tx():
            docs = self._db.where("product", "sku", sku)
            return envelope(self._render_products(docs, base_url), docs)

    def get_product(self, id: str, *, base_url: str) -> JSON:
        with self._tx():
            return self._render_products([self._product(id)], base_url)[0]

    def _product(self, id: str) -> Doc:
        doc = self._db.get("product", id)
        if doc is None:
            raise not_found("product", id)
        return doc

    def _family(self, family_id: str) -> list[Doc]:
        members = self._db.where("product", "family_id", family_id)
        return sorted(members, key=lambda d: int(d["created_version"]))

    def _render_products(self, docs: list[Doc], base_url: str) -> list[JSON]:
        if not docs:
            return []
        lookups = Lookups(self._db)
        family_ids = sorted({d["family_id"] for d in docs})
        sizes: dict[str, int] = {}
        for member in self._db.in_families("product", family_ids):
            sizes[member["family_id"]] = sizes.get(member["family_id"], 0) + 1
        images: dict[str, list[Doc]] = {}
        for image in self._db.in_families("image", family_ids):
            if image["status"] == "uploaded":
                images.setdefault(image["family_id"], []).append(image)
        for family in images.values():
            family.sort(key=lambda i: (float(i["position"]), int(i["created_version"])))
        return [
            self._render_product(d, lookups, sizes.get(d["family_id"], 0), images, base_url)
            for d in docs
        ]

    def _render_product(
        self,
        doc: Doc,
        lookups: Lookups,
        family_size: int,
        images: dict[str, list[Doc]],
        base_url: str,
    ) -> JSON:
        has_variants = doc["variant_parent_id"] is None and bool(doc["attribute_ids"])
        options = [
            {
                "id": attribute_id,
                "name": lookups.attribute_name(attribute_id),
                "value": doc["values"].get(attribute_id, ""),
            }
            for attribute_id in doc["attribute_ids"]
        ]
        variant_name = " / ".join([doc["name"], *(o["value"] for o in options if o["value"])])
        family_images = [image_sample(i, base_url) for i in images.get(doc["family_id"], [])]
        first = family_images[0]["sizes"] if family_images else None
        placeholder = f"{base_url}/cdn/placeholder/no-image-white"
        product: JSON = {
            "id": doc["id"],
            "family_id": doc["family_id"],
            "name": doc["name"],
            "variant_name": variant_name,
            "handle": doc["handle"],
            "sku": doc["sku"],
            "description": doc["description"],
            "source": doc["source"],
            "source_id": doc["source_id"],
            "source_variant_id": doc["source_variant_id"],
            "active": doc["is_active"],
            "is_active": doc["is_active"],
            "has_inventory": doc["track_inventory"],
            "is_composite": False,
            "has_variants": has_variants,
            "variant_parent_id": doc["variant_parent_id"],
            "variant_options": options,
            "variant_count": family_size if doc["attribute_ids"] else 0,
            "price_including_tax": money(doc["price_including_tax"]),
            "price_excluding_tax": money(doc["price_excluding_tax"]),
            "supply_price": money(doc["supply_price"]) or 0.0,
            "supplier_id": doc["supplier_id"],
            "supplier_code": doc["supplier_code"],
            "supplier": lookups.supplier_sample(doc["supplier_id"]),
            "product_suppliers": lookups.product_suppliers(doc),
            "brand_id": doc["brand_id"],
            "brand": lookups.brand_sample(doc["brand_id"]),
            "product_type_id": doc["product_category_id"],
            "type": lookups.type_sample(doc["product_category_id"]),
            "tag_ids": list(doc["tag_ids"]),
            "categories": lookups.tags(doc["tag_ids"]),
            "product_codes": [dict(c) for c in doc["product_codes"]],
            "attributes": [],
            "images": family_images,
            "image_url": first["standard"] if first else f"{placeholder}-standard.png",
            "image_thumbnail_url": first["thumb"] if first else f"{placeholder}-thumb.png",
            "account_code": doc["account_code_sale"],
            "account_code_purchase": doc["account_code_purchase"],
            "button_order": 0,
            "loyalty_amount": money(doc["loyalty_amount"]),
            "created_at": doc["created_at"],
            "updated_at": doc["updated_at"],
            "deleted_at": doc["deleted_at"],
            "version": doc["version"],
        }
        product.update({k: (money(v) if k in DIMENSIONS else v) for k, v in doc["dims"].items()})
        return product

    # -- products: writes --------------------------------------------------------------------

    def create_products(self, body: object) -> list[str]:
        """POST /api/2.0/products: a simple product, or a whole family with its variants.
        Returns the new ids, the family's parent first."""
        fields = json_object(body)
        with self._tx():
            errors: dict[str, Any] = {}
            name = fields.get("name")
            if not isinstance(name, str) or not name.strip():
                errors["name"] = "Name is required"
            family = self._family_fields(fields, errors, creating=True)
            top_price = self._price(fields, errors, "")
            top_supply = number_field(fields, "supply_price", errors, "")
            top_code = optional_str(fields, "supplier_code", errors, "")
            dims = dimensions(fields, errors, "")
            attribute_ids: list[str] = []
            rows: list[JSON] = []
            variants = fields.get("variants")
            if variants is None or variants == []:
                rows.append(
                    self._create_row(fields, "", top_price, top_supply, top_code, {}, errors)
                )
            elif not isinstance(variants, list):
                errors["variants"] = "Variants must be a list"
            elif len(variants) > MAX_VARIANTS:
                errors["variants"] = f"A product can have at most {MAX_VARIANTS} variants"
            else:
                attribute_ids = self._variant_rows(
                    variants, top_price, top_supply, top_code, rows, errors
                )
            if errors:
                raise invalid(errors)
            assert isinstance(name, str)
            self._check_unique([r["sku"] for r in rows if r["sku"]])
            family_id = _new_id()
            now = _now()
            ids: list[str] = []
            for row in rows:
                sku, codes = self._sku_and_codes(row["sku"], row["product_codes"])
                doc: Doc = {
                    "id": _new_id(),
                    "family_id": family_id,
                    "name": name.strip(),
                    "sku": sku,
                    "product_codes": codes,
                    "variant_parent_id": ids[0] if ids else None,
                    "attribute_ids": attribute_ids,
                    "values": row["values"],
                    "supply_price": decimal_text(row["supply_price"]),
                    "supplier_code": row["supplier_code"],
                    "dims": {**dims, **row["dims"]},
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": None,
                    **family,
                    **self._price_pair(row["price"]),
                }
                doc["created_version"] = self._db.next_version()
                self._db.put("product", doc)
                ids.append(doc["id"])
            return ids

    def _variant_rows(
        self,
        variants: list[object],
        top_price: tuple[str, Decimal] | None,
        top_supply: Decimal | None,
        top_code: str | None,
        rows: list[JSON],
        errors: dict[str, Any],
    ) -> list[str]:
        attribute_ids: list[str] | None = None
        seen: dict[tuple[str, ...], int] = {}
        for index, variant in enumerate(variants):
            where = f"variants[{index}]"
            if not isinstance(variant, dict):
                errors[where] = "Each variant must be an object"
                continue
            definitions = variant.get("variant_definitions")
            values = self._definitions(definitions, f"{where}.variant_definitions", errors)
            if values is None:
                continue
            if attribute_ids is None:
                attribute_ids = list(values)
            elif set(values) != set(attribute_ids):
                errors[f"{where}.variant_definitions"] = (
                    "Every variant must give a value for the same attributes"
                )
                continue
            combination = tuple(values[a].casefold() for a in attribute_ids)
            if combination in seen:
                errors[f"{where}.variant_definitions"] = (
                    f"Same attribute values as variants[{seen[combination]}]"
                )
                continue
            seen[combination] = index
            price = self._price(variant, errors, f"{where}.") or top_price
            supply = number_field(variant, "supply_price", errors, f"{where}.")
            code = optional_str(variant, "supplier_code", errors, f"{where}.")
            rows.append(
                self._create_row(
                    variant,
                    f"{where}.",
                    price,
                    top_supply if supply is None else supply,
                    top_code if code is None else code,
                    values,
                    errors,
                )
            )
        return attribute_ids or []

    def _definitions(
        self, definitions: object, where: str, errors: dict[str, Any]
    ) -> dict[str, str] | None:
        """{attribute id: value} from `[{attribute_id, value}]`, checked, in the given order."""
        if not isinstance(definitions, list) or not definitions:
            errors[where] = "Each variant needs variant_definitions"
            return None
        if len(definitions) > MAX_ATTRIBUTES:
            errors[where] = f"A product can have at most {MAX_ATTRIBUTES} variant attributes"
            return None
        values: dict[str, str] = {}
        for definition in definitions:
            if not isinstance(definition, dict):
                errors[where] = "Each definition must be an object"
                return None
            attribute_id = definition.get("attribute_id")
            value = definition.get("value")
            if not isinstance(attribute_id, str) or self._db.get("attribute", attribute_id) is None:
                errors[where] = f"No variant attribute with id {attribute_id!r}"
                return None
            if not isinstance(value, str) or not value.strip():
                errors[where] = "Each attribute needs a non-empty value"
                return None
            if attribute_id in values:
                errors[where] = "An attribute is given twice"
                return None
            values[attribute_id] = value.strip()
        return values

    def _create_row(
        self,
        fields: JSON,
        where: str,
        price: tuple[str, Decimal] | None,
        supply: Decimal | None,
        supplier_code: str | None,
        values: dict[str, str],
        errors: dict[str, Any],
    ) -> JSON:
        if price is None and not any(k.startswith(where + "price") for k in errors):
            errors[f"{where}price_including_tax"] = (
                "A price is required: price_including_tax or price_excluding_tax"
            )
        sku = optional_str(fields, "sku", errors, where)
        return {
            "sku": sku.strip() if sku and sku.strip() else None,
            "product_codes": product_codes_of(
                fields.get("product_codes"), errors, f"{where}product_codes"
            ),
            "price": price,
            "supply_price": supply,
            "supplier_code": supplier_code,
            "values": values,
            "dims": dimensions(fields, errors, where) if where else {},
        }

    def _family_fields(self, fields: JSON, errors: dict[str, Any], *, creating: bool) -> JSON:
        """Validated family-wide fields of a 2.0 create body, in stored form."""
        name = fields.get("name")
        handle = fields.get("handle")
        if handle is None and isinstance(name, str):
            handle = slug(name)
        if not isinstance(handle, str) or not handle.strip():
            errors["handle"] = "Handle must be a non-empty string"
            handle = ""
        category = fields.get("product_category_id", fields.get("product_type_id"))
        is_active = fields.get("is_active", True)
        if not isinstance(is_active, bool):
            errors["is_active"] = "is_active must be true or false"
        track = fields.get("track_inventory", True)
        return {
            "handle": handle.strip(),
            "description": optional_str(fields, "description", errors, ""),
            "brand_id": self._reference("brand", fields.get("brand_id"), "brand_id", errors),
            "supplier_id": self._reference(
                "supplier", fields.get("supplier_id"), "supplier_id", errors
            ),
            "product_category_id": self._leaf_category(category, "product_category_id", errors),
            "tag_ids": self._tag_ids(fields.get("tag_ids", []), "tag_ids", errors),
            "is_active": is_active is not False,
            "track_inventory": track is not False,
            "loyalty_amount": decimal_text(number_field(fields, "loyalty_amount", errors, "")),
            "account_code_sale": optional_str(fields, "account_code_sale", errors, ""),
            "account_code_purchase": optional_str(fields, "account_code_purchase", errors, ""),
            "source": "USER",
            "source_id": optional_str(fields, "source_id", errors, ""),
            "source_variant_id": optional_str(fields, "source_variant_id", errors, ""),
        }

    def _reference(
        self, kind: str, value: object, field: str, errors: dict[str, Any]
    ) -> str | None:
        """An optional id of a live object of `kind`; "" and null mean none."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or self._db.get(kind, value) is None:
            errors[field] = f"No {kind} with id {value!r}"
            return None
        return value

    def _leaf_category(self, value: object, field: str, errors: dict[str, Any]) -> str | None:
        category = self._reference("category", value, field, errors)
        if category is not None:
            tree = CategoryTree(self._db.page("category"))
            if tree.children(category):
                errors[field] = "Products can only be assigned to a leaf category"
                return None
        return category

    def _tag_ids(self, value: object, field: str, errors: dict[str, Any]) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            errors[field] = "tag_ids must be a list of tag ids"
            return []
        unknown = [t for t in value if self._db.get("tag", t) is None]
        if unknown:
            errors[field] = f"No tag with id {unknown[0]!r}"
            return []
        return list(dict.fromkeys(value))

    def _price(
        self, fields: JSON, errors: dict[str, Any], where: str
    ) -> tuple[str, Decimal] | None:
        """The one price a write may carry: (field name, amount), or None if absent."""
        given = [
            (key, number_field(fields, key, errors, where))
            for key in ("price_including_tax", "price_excluding_tax")
            if fields.get(key) is not None
        ]
        if len(given) == 2:
            errors[f"{where}price_including_tax"] = (
                "Send only one of price_including_tax and price_excluding_tax"
            )
            return None
        if given and given[0][1] is not None:
            key, amount = given[0]
            assert amount is not None
            if amount < 0:
                errors[f"{where}{key}"] = "A price cannot be negative"
                return None
            return key, amount
        return None

    def _price_pair(self, price: tuple[str, Decimal] | None) -> JSON:
        """Both prices from the written one; the computed one carries up to 5 decimals."""
        if price is None:
            return {}
        key, amount = price
        factor = 1 + DEFAULT_TAX_RATE
        if key == "price_including_tax":
            other = (amount / factor).quantize(_FIVE_PLACES, rounding=ROUND_HALF_UP)
            return {
                "price_including_tax": decimal_text(amount),
                "price_excluding_tax": decimal_text(other),
            }
        other = (amount * factor).quantize(_FIVE_PLACES, rounding=ROUND_HALF_UP)
        return {
            "price_excluding_tax": decimal_text(amount),
            "price_including_tax": decimal_text(other),
        }

    def _sku_and_codes(self, sku: str | None, codes: list[JSON]) -> tuple[str, list[JSON]]:
        """The SKU always appears among the product codes; a missing one comes from the
        store's sequence and is added as a CUSTOM code."""
        if sku is None:
            sku = sku_from_codes(codes)
        if sku is None:
            sku = self._next_sku()
        if not any(c["code"] == sku for c in codes):
            codes = [{"type": "CUSTOM", "code": sku}, *codes]
        return sku, codes

    def _next_sku(self) -> str:
        value = int(self._db.meta("sku_sequence") or "10000")
        while self._db.where("product", "sku", str(value)):
            value += 1
        self._db.set_meta("sku_sequence", str(value + 1))
        return str(value)

    def _check_unique(self, skus: list[str]) -> None:
        """422 naming every clash with an existing SKU, with the existing id.

        Family names are not checked: real stores hold several families under one name (the
        lightspeed-xseries.md's "unique across families" is not what stores do), so a catalog
        adopting one must be able to create and rename them.
        """
        fields: dict[str, Any] = {}
        seen: set[str] = set()
        for sku in skus:
            if sku in seen:
                fields["sku"] = f"The SKU {sku!r} is given twice"
                break
            seen.add(sku)
            existing = self._db.where("product", "sku", sku)
            if existing:
                fields["sku"] = "A product with this SKU already exists"
                fields["sku_existing_id"] = existing[0]["id"]
                break
        if fields:
            raise invalid(fields)

    def update_product(self, id: str, body: object) -> JSON:
        """PUT /api/2.1/products/{id}: `common` goes to every family member, `details` to this
        product only. Members whose stored form does not change keep their version."""
        fields = json_object(body)
        with self._tx():
            target = self._product(id)
            errors: dict[str, Any] = {}
            common = section(fields, "common", errors)
            details = section(fields, "details", errors)
            if errors:
                raise invalid(errors)
            members = self._family(target["family_id"])
            shared = self._common_changes(common, target, errors)
            own = self._detail_changes(details, target, shared, members, errors)
            if errors:
                raise invalid(errors)
            if "sku" in own and own["sku"] != target["sku"]:
                clash = [d for d in self._db.where("product", "sku", own["sku"]) if d["id"] != id]
                if clash:
                    raise invalid(
                        {
                            "sku": "A product with this SKU already exists",
                            "sku_existing_id": clash[0]["id"],
                        }
                    )
            now = _now()
            for member in members:
                new = dict(member)
                new.update(shared)
                if "attribute_ids" in shared:
                    new["values"] = {
                        a: member["values"].get(a, "") for a in shared["attribute_ids"]
                    }
                supplier_changes = shared.get("_member_supplier")
                new.pop("_member_supplier", None)
                if supplier_changes:
                    new.update(supplier_changes)
                if member["id"] == id:
                    new.update(own)
                    if "values" in own:
                        new["values"] = {**new["values"], **own["values"]}
                if new != member:
                    new["updated_at"] = now
                    self._db.put("product", new)
            return {"product_id": id, "common": common, "details": details}

    def _common_changes(self, common: JSON, target: Doc, errors: dict[str, Any]) -> JSON:
        changes: JSON = {}
        if "name" in common:
            name = common["name"]
            if not isinstance(name, str) or not name.strip():
                errors["common.name"] = "Name cannot be empty"
            else:
                changes["name"] = name.strip()
        if "description" in common:
            changes["description"] = optional_str(common, "description", errors, "common.")
        if "brand_id" in common:
            changes["brand_id"] = self._reference(
                "brand", common["brand_id"], "common.brand_id", errors
            )
        if "product_category_id" in common:
            changes["product_category_id"] = self._leaf_category(
                common["product_category_id"], "common.product_category_id", errors
            )
        if "tag_ids" in common:
            changes["tag_ids"] = self._tag_ids(common["tag_ids"], "common.tag_ids", errors)
        for flag, stored in (("track_inventory", "track_inventory"),):
            if flag in common:
                if isinstance(common[flag], bool):
                    changes[stored] = common[flag]
                else:
                    errors[f"common.{flag}"] = f"{flag} must be true or false"
        for code in ("account_code_sale", "account_code_purchase"):
            if code in common:
                changes[code] = optional_str(common, code, errors, "common.")
        if "product_suppliers" in common:
            suppliers = common["product_suppliers"]
            if not isinstance(suppliers, list):
                errors["common.product_suppliers"] = "product_suppliers must be a list"
            elif not suppliers:
                changes["supplier_id"] = None
                changes["_member_supplier"] = {"supplier_code": None}
            else:
                first = suppliers[0]
                if not isinstance(first, dict):
                    errors["common.product_suppliers"] = "Each supplier must be an object"
                else:
                    changes["supplier_id"] = self._reference(
                        "supplier",
                        first.get("supplier_id"),
                        "common.product_suppliers[0].supplier_id",
                        errors,
                    )
                    member = supplier_details(first, errors, "common.product_suppliers[0].")
                    if member:
                        changes["_member_supplier"] = member
        if "variant_attributes" in common:
            attributes = common["variant_attributes"]
            ids = (
                [a.get("attribute_id") for a in attributes if isinstance(a, dict)]
                if isinstance(attributes, list)
                else None
            )
            if ids is None or len(ids) != len(attributes) or len(set(ids)) != len(ids):
                errors["common.variant_attributes"] = (
                    "A list of distinct {attribute_id} is required"
                )
            elif len(ids) > MAX_ATTRIBUTES:
                errors["common.variant_attributes"] = (
                    f"A product can have at most {MAX_ATTRIBUTES} variant attributes"
                )
            elif any(not isinstance(a, str) or self._db.get("attribute", a) is None for a in ids):
                errors["common.variant_attributes"] = "Unknown variant attribute"
            else:
                changes["attribute_ids"] = ids
        return changes

    def _detail_changes(
        self,
        details: JSON,
        target: Doc,
        shared: JSON,
        members: list[Doc],
        errors: dict[str, Any],
    ) -> JSON:
        changes: JSON = {}
        if "is_active" in details:
            if isinstance(details["is_active"], bool):
                changes["is_active"] = details["is_active"]
            else:
                errors["details.is_active"] = "is_active must be true or false"
        if "product_codes" in details:
            codes = product_codes_of(details["product_codes"], errors, "details.product_codes")
            if not codes and "details.product_codes" not in errors:
                errors["details.product_codes"] = "A product needs at least one product code"
            elif codes:
                changes["product_codes"] = codes
                changes["sku"] = sku_from_codes(codes)
        price = self._price(details, errors, "details.")
        if price is not None:
            changes.update(self._price_pair(price))
        if "loyalty_amount" in details:
            changes["loyalty_amount"] = decimal_text(
                number_field(details, "loyalty_amount", errors, "details.")
            )
        changes_dims = dimensions(details, errors, "details.")
        if changes_dims:
            changes["dims"] = {**target["dims"], **changes_dims}
        if "product_suppliers" in details:
            suppliers = details["product_suppliers"]
            supplier_id = shared.get("supplier_id", target["supplier_id"])
            if not isinstance(suppliers, list):
                errors["details.product_suppliers"] = "product_suppliers must be a list"
            else:
                for index, entry in enumerate(suppliers):
                    where = f"details.product_suppliers[{index}]."
                    if not isinstance(entry, dict) or entry.get("supplier_id") != supplier_id:
                        errors[where + "supplier_id"] = "Not a supplier of this product family"
                    else:
                        changes.update(supplier_details(entry, errors, where))
        if "variant_attribute_values" in details:
            attribute_ids: list[str] = (
                shared["attribute_ids"] if "attribute_ids" in shared else target["attribute_ids"]
            )
            values = self._attribute_values(
                details["variant_attribute_values"], attribute_ids, errors
            )
            if values is not None:
                merged = {a: values.get(a, target["values"].get(a, "")) for a in attribute_ids}
                clash = same_values(merged, attribute_ids, members, target["id"])
                if clash is not None:
                    errors["details.variant_attribute_values"] = (
                        "Another variant of this family has these values"
                    )
                    errors["details.variant_attribute_values_existing_id"] = clash
                changes["values"] = values
        return changes

    def _attribute_values(
        self, given: object, attribute_ids: list[str], errors: dict[str, Any]
    ) -> dict[str, str] | None:
        where = "details.variant_attribute_values"
        if not isinstance(given, list):
            errors[where] = "variant_attribute_values must be a list"
            return None
        values: dict[str, str] = {}
        for entry in given:
            if not isinstance(entry, dict):
                errors[where] = "Each value must be an object"
                return None
            attribute_id = entry.get("attribute_id")
            value = entry.get("attribute_value")
            if attribute_id not in attribute_ids:
                errors[where] = f"Attribute {attribute_id!r} is not an attribute of this family"
                return None
            if not isinstance(value, str) or not value.strip():
                errors[where] = "Each attribute needs a non-empty attribute_value"
                return None
            values[str(attribute_id)] = value.strip()
        return values

    def add_variant(self, body: object) -> JSON:
        """POST /api/2.1/products: one new variant in the family named by `common.name`; it
        must give a value for every attribute of the family."""
        fields = json_object(body)
        with self._tx():
            errors: dict[str, Any] = {}
            common = section(fields, "common", errors)
            details = section(fields, "details", errors)
            name = common.get("name")
            if not isinstance(name, str) or not name.strip():
                errors["common.name"] = "The family name is required"
            if errors:
                raise invalid(errors)
            assert isinstance(name, str)
            found = self._db.where("product", "name_key", name_key(name) or "")
            if not found:
                raise invalid({"common.name": f"No product family is named {name!r}"})
            members = self._family(found[0]["family_id"])
            parent = next(m for m in members if m["variant_parent_id"] is None)
            attribute_ids: list[str] = parent["attribute_ids"]
            if not attribute_ids:
                raise invalid(
                    {"common.name": "This product has no variant attributes; set them first"}
                )
            values = self._attribute_values(
                details.get("variant_attribute_values"), attribute_ids, errors
            )
            if values is not None and set(values) != set(attribute_ids):
                errors["details.variant_attribute_values"] = (
                    "A value is required for every attribute of the family"
                )
            elif values is not None:
                clash = same_values(values, attribute_ids, members, None)
                if clash is not None:
                    errors["details.variant_attribute_values"] = (
                        "A variant with these values already exists"
                    )
                    errors["details.variant_attribute_values_existing_id"] = clash
            codes = product_codes_of(
                details.get("product_codes", []), errors, "details.product_codes"
            )
            price = self._price(details, errors, "details.")
            if price is None and "details.price_including_tax" not in errors:
                errors["details.price_including_tax"] = (
                    "A price is required: price_including_tax or price_excluding_tax"
                )
            is_active = details.get("is_active", True)
            if not isinstance(is_active, bool):
                errors["details.is_active"] = "is_active must be true or false"
            supplier = supplier_details(
                next(
                    (
                        s
                        for s in details.get("product_suppliers") or []
                        if isinstance(s, dict) and s.get("supplier_id") == parent["supplier_id"]
                    ),
                    {},
                ),
                errors,
                "details.product_suppliers[0].",
            )
            dims = dimensions(details, errors, "details.")
            if errors:
                raise invalid(errors)
            requested_sku = sku_from_codes(codes)
            self._check_unique([requested_sku] if requested_sku else [])
            sku, codes = self._sku_and_codes(requested_sku, codes)
            now = _now()
            doc: Doc = {
                **{k: v for k, v in parent.items() if k in _FAMILY_FIELDS},
                "id": _new_id(),
                "sku": sku,
                "product_codes": codes,
                "variant_parent_id": parent["id"],
                "values": values or {},
                "is_active": is_active,
                "supply_price": parent["supply_price"],
                "supplier_code": parent["supplier_code"],
                "loyalty_amount": decimal_text(number_field(details, "loyalty_amount", errors, "")),
                "dims": dims,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                **supplier,
                **self._price_pair(price),
            }
            doc["created_version"] = self._db.next_version()
            self._db.put("product", doc)
            self._touch(parent)  # its variant_count changed
            return {
                "id": doc["id"],
                "product_id": doc["id"],
                "family_id": doc["family_id"],
                "common": common,
                "details": details,
            }

    def delete_product(self, id: str) -> JSON:
        """Delete one product (one variant). A deleted parent hands the role to the oldest
        remaining variant."""
        with self._tx():
            doc = self._product(id)
            self._soft_delete("product", doc)
            rest = self._family(doc["family_id"])
            if not rest:
                self._delete_family_images(doc["family_id"])
            elif doc["variant_parent_id"] is None:
                heir = rest[0]
                for member in rest:
                    member["variant_parent_id"] = None if member is heir else heir["id"]
                    member["updated_at"] = _now()
                    self._db.put("product", member)
            else:
                self._touch(next(m for m in rest if m["variant_parent_id"] is None))
            return {"id": id}

    def delete_family(self, id: str) -> JSON:
        with self._tx():
            doc = self._product(id)
            for member in self._family(doc["family_id"]):
                self._soft_delete("product", member)
            self._delete_family_images(doc["family_id"])
            return {"id": id}

    def _touch(self, doc: Doc) -> None:
        """A new version for a product whose served form changed through its family."""
        doc["updated_at"] = _now()
        self._db.put("product", doc)

    # -- images ------------------------------------------------------------------------------

    def upload_image(self, product_id: str, data: bytes) -> JSON:
        """Product-level image upload; the same bytes again for the same family reuse the
        image. It is `processing` until `image_processing_seconds` have passed."""
        with self._tx():
            product = self._product(product_id)
            if len(data) > MAX_IMAGE_BYTES:
                raise StoreRefusal(413, "Payload Too Large", "An image can be at most 10 MB")
            kind = sniff_image(data)
            if kind is None:
                raise invalid({"image": "The file must be a jpg, png, gif, tiff or webp image"})
            media_type, ext = kind
            sha = hashlib.sha256(data).hexdigest()
            family = self._db.in_families("image", [product["family_id"]])
            for image in family:
                if image["sha"] == sha:
                    return render_image(image)
            if len(family) >= MAX_IMAGES_PER_PRODUCT:
                raise invalid(
                    {"image": f"A product can have at most {MAX_IMAGES_PER_PRODUCT} images"}
                )
            self._db.put_blob(sha, media_type, data)
            ready_at = time.time() + self.image_processing_seconds
            doc: Doc = {
                "id": _new_id(),
                "product_id": product_id,
                "family_id": product["family_id"],
                "sha": sha,
                "ext": ext,
                "position": max((float(i["position"]) for i in family), default=0) + 1,
                "status": "processing",
                "ready_at": ready_at,
                "created_at": _now(),
                "deleted_at": None,
            }
            doc["created_version"] = self._db.next_version()
            self._db.put("image", doc)
            self._pending_images.append((ready_at, doc["id"]))
            return render_image(doc)

    def get_image(self, id: str, *, base_url: str) -> JSON:
        with self._tx():
            return render_image(self._image(id), base_url)

    def _image(self, id: str) -> Doc:
        doc = self._db.get("image", id)
        if doc is None:
            raise not_found("product image", id)
        return doc

    def position_image(self, id: str, body: object, *, base_url: str) -> JSON:
        fields = json_object(body)
        with self._tx():
            doc = self._image(id)
            errors: dict[str, Any] = {}
            position = number_field(fields, "position", errors, "")
            if position is None and not errors:
                errors["position"] = "position is required"
            if errors:
                raise invalid(errors)
            assert position is not None
            if float(position) != float(doc["position"]):
                doc["position"] = float(position)
                self._db.put("image", doc)
                self._touch_family(doc["family_id"])
            return render_image(doc, base_url)

    def delete_image(self, id: str) -> None:
        with self._tx():
            doc = self._image(id)
            self._soft_delete("image", doc)
            self._touch_family(doc["family_id"])

    def image_bytes(self, sha: str) -> tuple[str, bytes] | None:
        """What the CDN serves for an image's content hash (None if unknown)."""
        if sha == "placeholder":
            return "image/png", PLACEHOLDER_PNG
        with self._lock:
            return self._db.blob(sha)

    def _delete_family_images(self, family_id: str) -> None:
        for image in self._db.in_families("image", [family_id]):
            self._soft_delete("image", image)

    def _touch_family(self, family_id: str) -> None:
        for member in self._db.where("product", "family_id", family_id):
            self._touch(member)

    def _settle_images(self) -> None:
        """Finish processing of images whose delay has passed. Done lazily at the start of
        every operation, so what a client sees depends only on elapsed time."""
        if not self._pending_images:
            return
        now = time.time()
        due = [p for p in self._pending_images if p[0] <= now]
        if not due:
            return
        self._pending_images = [p for p in self._pending_images if p[0] > now]
        families: set[str] = set()
        for _, id in due:
            doc = self._db.get("image", id)
            if doc is not None and doc["status"] == "processing":
                doc["status"] = "uploaded"
                self._db.put("image", doc)
                families.add(doc["family_id"])
        for family_id in sorted(families):
            self._touch_family(family_id)


# -- module helpers -----------------------------------------------------------------------------

_FAMILY_FIELDS = (
    "family_id",
    "name",
    "handle",
    "description",
    "brand_id",
    "supplier_id",
    "product_category_id",
    "tag_ids",
    "track_inventory",
    "account_code_sale",
    "account_code_purchase",
    "source",
    "source_id",
    "source_variant_id",
    "attribute_ids",
)
