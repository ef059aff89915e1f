"""An R-Series store in SQLite, answering as lightspeed-rseries.md section 10 says.

Records are kept as the wire shows them (every scalar a string); relations are joined in when a
read asks for them with `load_relations`. Fields prefixed `_` are the store's own bookkeeping
(prices, shops, supplier codes, attribute values, tag ids) and never go out as they are.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp

from reconciler.providers.rseries.sandbox import query as q
from reconciler.providers.rseries.sandbox.db import Doc, Records
from reconciler.providers.rseries.sandbox.errors import (
    RSeriesError,
    bad_request,
    not_allowed,
    not_found,
)
from reconciler.providers.rseries.sandbox.traffic import Bucket, Faults, Tokens, Traffic
from reconciler.providers.sandbox_traffic import TrafficControl, Verdict

JSON = dict[str, Any]
MAX_IMAGE_BYTES = 10 * 1024 * 1024
PRICE_LEVELS = (("1", "Default"), ("2", "MSRP"), ("3", "Online"))
SHOP_ID = "1"
MONEY = frozenset({"defaultCost", "avgCost", "amount"})


@dataclass(frozen=True)
class Resource:
    name: str
    id_field: str
    fields: tuple[tuple[str, str], ...]  # wire fields in order, with their POST defaults
    sorts: tuple[str, ...]
    text_field: str | None = None  # the description or name paging can sort by
    archivable: bool = False
    relations: tuple[tuple[str, bool], ...] = ()  # (name, to-many)
    read_only: frozenset[str] = field(default_factory=frozenset)

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.fields)

    def relation_names(self) -> list[str]:
        return [name for name, _ in self.relations]


_ITEM_FIELDS = (
    ("itemID", ""),
    ("systemSku", ""),
    ("defaultCost", "0"),
    ("avgCost", "0"),
    ("discountable", "true"),
    ("tax", "true"),
    ("archived", "false"),
    ("itemType", "default"),
    ("description", ""),
    ("modelYear", "0"),
    ("upc", ""),
    ("ean", ""),
    ("customSku", ""),
    ("manufacturerSku", ""),
    ("createTime", ""),
    ("timeStamp", ""),
    ("categoryID", "0"),
    ("taxClassID", "1"),
    ("departmentID", "0"),
    ("itemMatrixID", "0"),
    ("manufacturerID", "0"),
    ("seasonID", "0"),
    ("defaultVendorID", "0"),
    ("itemECommerceID", "0"),
)
_MATRIX_FIELDS = (
    ("itemMatrixID", ""),
    ("description", ""),
    ("tax", "true"),
    ("defaultCost", "0"),
    ("itemType", "default"),
    ("serialized", "false"),
    ("modelYear", "0"),
    ("archived", "false"),
    ("timeStamp", ""),
    ("itemAttributeSetID", "0"),
    ("manufacturerID", "0"),
    ("categoryID", "0"),
    ("defaultVendorID", "0"),
    ("taxClassID", "1"),
    ("seasonID", "0"),
    ("departmentID", "0"),
    ("itemECommerceID", "0"),
)
_STAMPS = frozenset({"createTime", "timeStamp"})

RESOURCES: Mapping[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "Item",
            "itemID",
            _ITEM_FIELDS,
            ("itemID", "timeStamp", "description"),
            "description",
            archivable=True,
            relations=(
                ("Category", False),
                ("Manufacturer", False),
                ("ItemAttributes", False),
                ("ItemShops", True),
                ("ItemVendorNums", True),
                ("Images", True),
                ("Tags", True),
            ),
            read_only=frozenset({"itemID", "systemSku", "avgCost", "archived", *_STAMPS}),
        ),
        Resource(
            "ItemMatrix",
            "itemMatrixID",
            _MATRIX_FIELDS,
            ("itemMatrixID", "timeStamp", "description"),
            "description",
            archivable=True,
            relations=(
                ("ItemAttributeSet", False),
                ("Category", False),
                ("Manufacturer", False),
                ("Items", True),
                ("Images", True),
                ("Tags", True),
            ),
            read_only=frozenset({"itemMatrixID", "archived", *_STAMPS}),
        ),
        Resource(
            "ItemAttributeSet",
            "itemAttributeSetID",
            (
                ("itemAttributeSetID", ""),
                ("name", ""),
                ("attributeName1", ""),
                ("attributeName2", ""),
                ("attributeName3", ""),
                ("system", "false"),
                ("archived", "false"),
            ),
            ("itemAttributeSetID",),
            read_only=frozenset({"itemAttributeSetID", "system", "archived"}),
        ),
        Resource(
            "Category",
            "categoryID",
            (
                ("categoryID", ""),
                ("name", ""),
                ("nodeDepth", "0"),
                ("fullPathName", ""),
                ("leftNode", "0"),
                ("rightNode", "0"),
                ("createTime", ""),
                ("timeStamp", ""),
                ("parentID", "0"),
            ),
            ("categoryID", "timeStamp", "leftNode", "rightNode"),
            "name",
            read_only=frozenset(
                {"categoryID", "nodeDepth", "fullPathName", "leftNode", "rightNode", *_STAMPS}
            ),
        ),
        Resource(
            "Manufacturer",
            "manufacturerID",
            (("manufacturerID", ""), ("name", ""), ("createTime", ""), ("timeStamp", "")),
            ("manufacturerID", "timeStamp", "name"),
            "name",
            read_only=frozenset({"manufacturerID", *_STAMPS}),
        ),
        Resource(
            "Vendor",
            "vendorID",
            (
                ("vendorID", ""),
                ("name", ""),
                ("archived", "false"),
                ("accountNumber", ""),
                ("priceLevel", ""),
                ("updatePrice", "false"),
                ("updateCost", "false"),
                ("updateDescription", "false"),
                ("shareSellThrough", "false"),
                ("timeStamp", ""),
            ),
            ("vendorID", "timeStamp", "name"),
            "name",
            archivable=True,
            read_only=frozenset({"vendorID", "archived", *_STAMPS}),
        ),
        Resource(
            "Tag",
            "tagID",
            (("tagID", ""), ("name", "")),
            ("tagID", "name"),
            "name",
            read_only=frozenset({"tagID"}),
        ),
        Resource(
            "Image",
            "imageID",
            (
                ("imageID", ""),
                ("description", ""),
                ("filename", ""),
                ("ordering", "0"),
                ("publicID", ""),
                ("size", "0"),
                ("timeStamp", ""),
                ("itemID", "0"),
                ("itemMatrixID", "0"),
            ),
            ("imageID",),
            read_only=frozenset(
                {"imageID", "filename", "publicID", "size", "itemID", "itemMatrixID", *_STAMPS}
            ),
        ),
    )
}
SYSTEM_SETS = (
    ("1", "Color/Size", "Color", "Size", ""),
    ("2", "Size", "", "Size", ""),
    ("3", "Color", "Color", "", ""),
    ("4", "3 Attributes", "Attribute 1", "Attribute 2", "Attribute 3"),
)


def one_or_many(rows: list[Any]) -> Any:
    """The single-vs-list quirk: one row is an object, several an array."""
    return rows[0] if len(rows) == 1 else rows


def tag_name(name: str) -> str:
    """Tag names are stored lower-case without spaces [choice: the stricter doc sample]."""
    return "".join(name.split()).lower()


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _utc_text(value: str, *, up: bool) -> str | None:
    parsed = q._as_time(value)
    if parsed is None:
        return None
    seconds = parsed.timestamp()
    whole = int(seconds) + (1 if up and seconds != int(seconds) else 0)
    return _timestamp(whole)


class RSeriesStore(TrafficControl[Faults, Bucket]):
    """An R-Series account in SQLite (a file, or memory) plus the traffic rules in front of it."""

    traffic: Traffic

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        token: str = "sandbox-token",
        refresh_token: str = "sandbox-refresh-token",
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        access_token_seconds: int = 3600,
        account_id: str = "100001",
        account_name: str = "Sandbox R-Series Store",
        registers: int = 1,
        rate_limit: Bucket | str | None = "rseries",
        latency_ms: int = 0,
        fault_rate: float = 0.0,
        timeout_rate: float = 0.0,
        burst_429_rate: float = 0.0,
        seed: int | None = None,
        timeout_hold_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        bucket_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_id = account_id
        self.account_name = account_name
        self.registers = registers
        # Over a socket, commit-then-timeout holds the response until the client hangs up or
        # this many seconds pass, whichever is first.
        self.timeout_hold_seconds = timeout_hold_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._db = Records(path)
        self.tokens = Tokens(
            access_token=token,
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
            expires_in=access_token_seconds,
        )
        self.traffic = Traffic(
            Faults(
                fault_rate=fault_rate,
                timeout_rate=timeout_rate,
                burst_429_rate=burst_429_rate,
                latency_ms=latency_ms,
                bucket=self._limit(rate_limit),
            ),
            seed=seed,
            account_id=account_id,
            clock=bucket_clock,
        )
        with self._lock, self._db.transaction():
            if self._db.is_empty():
                self._seed()

    def build_app(self) -> ASGIApp:
        """The ASGI app serving this store (what `SandboxTransport` and the servers run)."""
        from reconciler.providers.rseries.sandbox.app import build_app

        return build_app(self)

    # -- control (mirrors /_sandbox/) -------------------------------------------------------

    def _limit(self, value: Bucket | str | None) -> Bucket | None:
        if isinstance(value, str):
            return Bucket.parse(value, registers=self.registers)
        return value

    def reset(self) -> None:
        """Wipe the data back to the seed, restore the start-up tokens, forget counts and the
        bucket. Fault settings are kept: they describe the environment, not the data."""
        with self._lock:
            self._db.wipe()
            with self._db.transaction():
                self._seed()
            self.tokens.reset()
            self.traffic.reset()

    def admit(self, *, method: str, route: str, cost: float, authorization: str | None) -> Verdict:
        return self.traffic.admit(
            method=method, route=route, cost=cost, authorized=self.tokens.check(authorization)
        )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock, self._db.transaction():
            yield

    def _now(self) -> str:
        return _timestamp(self._clock())

    # -- seed --------------------------------------------------------------------------------

    def _seed(self) -> None:
        # When this store's data began (a reset begins it again): a cache read from an older
        # store of the same file is not trusted (`born`).
        self._db.set_counter("born", int(self._clock() * 1000))
        for ident, name, a1, a2, a3 in SYSTEM_SETS:
            doc = {
                "itemAttributeSetID": ident,
                "name": name,
                "attributeName1": a1,
                "attributeName2": a2,
                "attributeName3": a3,
                "system": "true",
                "archived": "false",
            }
            self._db.next_value("ItemAttributeSet")
            self._put("ItemAttributeSet", doc)

    @property
    def born(self) -> int:
        """Epoch milliseconds when the data was seeded (by creation or `reset`)."""
        with self._lock:
            return self._db.counter("born") or 0

    # -- reads -------------------------------------------------------------------------------

    def account(self) -> JSON:
        return {
            "@attributes": {"count": "1"},
            "Account": {
                "accountID": self.account_id,
                "name": self.account_name,
                "link": {"@attributes": {"href": f"/API/V3/Account/{self.account_id}"}},
            },
        }

    def check_account(self, account_id: str) -> None:
        if account_id != self.account_id:
            raise not_found("Account", account_id)

    def get_one(self, kind: str, id: str, params: Mapping[str, str], *, base_url: str) -> JSON:
        resource = RESOURCES[kind]
        relations = q.parse_relations(params.get("load_relations"), _known(resource))
        with self._lock:
            doc = self._find(kind, id)
            return _envelope(kind, self._render(kind, doc, relations, base_url=base_url))

    def query(
        self, kind: str, params: Sequence[tuple[str, str]], *, base_url: str, path: str
    ) -> JSON:
        """A query: filters, sort, cursor paging; or `count=1`."""
        resource = RESOURCES[kind]
        single = dict(params)
        archived = q.archived_mode(single.get("archived")) if resource.archivable else "true"
        filters = self._filters(resource, params)
        if single.get("count") == "1":
            clash = sorted(k for k in ("limit", "sort", "after", "before") if k in single)
            if clash:
                raise bad_request(f"count=1 cannot be combined with {', '.join(clash)}.")
            with self._lock:
                n = sum(
                    1
                    for doc in self._db.scan(kind, column="id", descending=False, archived=archived)
                    if all(self._matches(kind, doc, f) for f in filters)
                )
            return {"@attributes": {"count": str(n)}}
        if "or" in single:
            raise bad_request("The or parameter is not supported by the sandbox.")
        sort = single.get("sort") or resource.id_field
        descending = sort.startswith("-")
        sort_field = sort.removeprefix("-")
        if sort_field not in resource.sorts:
            allowed = ", ".join(resource.sorts)
            raise bad_request(f"Cannot sort {kind} by {sort_field}; sortable fields: {allowed}.")
        limit = q.parse_limit(single.get("limit"))
        relations = q.parse_relations(single.get("load_relations"), _known(resource))
        by_id = sort_field == resource.id_field
        after = single.get("after")
        before = single.get("before")
        if after and before:
            raise bad_request("Send after or before, not both.")
        cursor = (
            q.decode_cursor(after or before or "", sorted_by_id=by_id)
            if (after or before)
            else None
        )
        backwards = before is not None and cursor is not None
        with self._lock:
            rows = self._page(
                resource,
                sort_field,
                descending=descending != backwards,
                archived=archived,
                cursor=cursor,
                filters=filters,
                limit=limit + 1,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            if backwards:
                rows.reverse()
            rendered = [self._render(kind, d, relations, base_url=base_url) for d in rows]
        kept = [(k, v) for k, v in params if k not in {"after", "before"}]
        if "sort" not in single:
            kept.append(("sort", resource.id_field))
        if "limit" not in single:
            kept.append(("limit", str(limit)))
        url = f"{base_url}{path}?"

        def link(direction: str, doc: Doc) -> str:
            token = q.encode_cursor(
                q.Cursor(
                    None if by_id else self._sort_value(resource, sort_field, doc),
                    int(doc[resource.id_field]),
                )
            )
            return url + urlencode([*kept, (direction, token)])

        has_next = more if not backwards else True
        has_previous = (cursor is not None) if not backwards else more
        attributes = {
            "next": link("after", rows[-1]) if rows and has_next else "",
            "previous": link("before", rows[0]) if rows and has_previous else "",
        }
        body: JSON = {"@attributes": attributes}
        if rendered:
            body[kind] = one_or_many(rendered)
        return body

    def _filters(self, resource: Resource, params: Sequence[tuple[str, str]]) -> list[q.Filter]:
        out = []
        for key, value in params:
            if key in q.RESERVED:
                continue
            if key == "itemCode" and resource.name == "Item":
                out.append(q.Filter("itemCode", "=", (value,)))
                continue
            if key not in resource.field_names:
                raise bad_request(f"{key} is not a field of {resource.name} to filter on.")
            flt = q.parse_filter(key, value)
            for wanted in flt.values:
                if key in _STAMPS and flt.op not in {"~", "!~"}:
                    q.comparable(key, wanted)  # refuses an unreadable date up front
            out.append(flt)
        return out

    def _matches(self, kind: str, doc: Doc, flt: q.Filter) -> bool:
        if flt.field == "itemCode":
            code = flt.values[0]
            return code in {doc.get("itemID"), doc.get("upc"), doc.get("ean")}
        return q.matches(doc, flt)

    def _sort_value(self, resource: Resource, sort_field: str, doc: Doc) -> str:
        return str(doc.get(sort_field, ""))

    def _page(
        self,
        resource: Resource,
        sort_field: str,
        *,
        descending: bool,
        archived: str,
        cursor: q.Cursor | None,
        filters: list[q.Filter],
        limit: int,
    ) -> list[Doc]:
        kind = resource.name
        if sort_field in {"leftNode", "rightNode"}:
            # Few categories: sort in Python by the number.
            docs = self._db.all(kind)
            docs.sort(
                key=lambda d: (int(d[sort_field]), int(d[resource.id_field])), reverse=descending
            )
            if cursor is not None:
                edge = (int(cursor.sort_value or 0), cursor.id)
                docs = [
                    d
                    for d in docs
                    if ((int(d[sort_field]), int(d[resource.id_field])) < edge) == descending
                    and (int(d[sort_field]), int(d[resource.id_field])) != edge
                ]
            source: Iterator[Doc] = iter(docs)
        else:
            column = (
                "id"
                if sort_field == resource.id_field
                else "ts"
                if sort_field == "timeStamp"
                else "sort_text"
            )
            bound = None if cursor is None else (cursor.sort_value, cursor.id)
            source = self._db.scan(
                kind,
                column=column,
                descending=descending,
                archived=archived,
                bound=bound,
                ts_range=_ts_range(filters),
            )
        out: list[Doc] = []
        for doc in source:
            if resource.archivable and not _archived_ok(doc, archived):
                continue
            if all(self._matches(kind, doc, f) for f in filters):
                out.append(doc)
                if len(out) >= limit:
                    break
        return out

    def _find(self, kind: str, id: str) -> Doc:
        if not id.isdigit():
            raise not_found(kind, id)
        doc = self._db.get(kind, int(id))
        if doc is None:
            raise not_found(kind, id)
        return doc

    def _exists(self, kind: str, id: str) -> bool:
        return id.isdigit() and self._db.get(kind, int(id)) is not None

    # -- rendering ---------------------------------------------------------------------------

    def _render(
        self,
        kind: str,
        doc: Doc,
        relations: Sequence[str],
        *,
        base_url: str,
        echo: bool = False,
    ) -> JSON:
        out: JSON = {k: v for k, v in doc.items() if not k.startswith("_")}
        # Item tags load as TagRelations in the docs and read as "Tags" [choice, section 10.10].
        wanted = {"Tags" if r == "TagRelations" else r for r in relations}
        if kind == "Image":
            out = _image_wire(out, base_url)
        if kind in {"Item", "ItemMatrix"}:
            self._relations(kind, doc, out, wanted, base_url=base_url, echo=echo)
        return out

    def _relations(
        self, kind: str, doc: Doc, out: JSON, wanted: set[str], *, base_url: str, echo: bool
    ) -> None:
        def linked(target: str, fk: str, name: str) -> None:
            if name in wanted and doc.get(fk, "0") not in {"0", ""}:
                found = self._db.get(target, int(doc[fk]))
                if found is not None:
                    out[name] = self._render(target, found, (), base_url=base_url)

        if kind == "ItemMatrix" and "ItemAttributeSet" in wanted:
            linked("ItemAttributeSet", "itemAttributeSetID", "ItemAttributeSet")
        linked("Category", "categoryID", "Category")
        linked("Manufacturer", "manufacturerID", "Manufacturer")
        if kind == "Item":
            attributes = doc.get("_attributes")
            if "ItemAttributes" in wanted and attributes:
                block = dict(attributes)
                found = self._db.get("ItemAttributeSet", int(attributes["itemAttributeSetID"]))
                if found is not None:
                    block["ItemAttributeSet"] = self._render(
                        "ItemAttributeSet", found, (), base_url=base_url
                    )
                out["ItemAttributes"] = block
            shops = doc.get("_shops") or []
            if ("ItemShops" in wanted or echo) and shops:
                out["ItemShops"] = {"ItemShop": one_or_many(shops)}
            nums = doc.get("_vendor_nums") or []
            if "ItemVendorNums" in wanted and nums:
                out["ItemVendorNums"] = {"ItemVendorNum": one_or_many(nums)}
        if kind == "ItemMatrix" and "Items" in wanted:
            members = [
                self._render("Item", d, (), base_url=base_url)
                for d in self._db.children("Item", f"ItemMatrix:{doc['itemMatrixID']}")
            ]
            if members:
                out["Items"] = {"Item": one_or_many(members)}
        if "Images" in wanted:
            owner = f"{kind}:{doc[RESOURCES[kind].id_field]}"
            images = [
                _image_wire({k: v for k, v in d.items() if not k.startswith("_")}, base_url)
                for d in self._db.children("Image", owner)
            ]
            images.sort(key=lambda i: (int(i["ordering"]), int(i["imageID"])))
            if images:
                out["Images"] = {"Image": one_or_many(images)}
        if "Tags" in wanted:
            names = [
                t["name"]
                for t in (self._db.get("Tag", int(i)) for i in doc.get("_tags") or [])
                if t is not None
            ]
            if names:
                out["Tags"] = {"tag": one_or_many(names)}
        out["Prices"] = {
            "ItemPrice": [
                {"amount": row["amount"], "useTypeID": row["useTypeID"], "useType": name}
                for level, name in PRICE_LEVELS
                for row in doc.get("_prices") or []
                if row["useTypeID"] == level
            ]
        }
        if kind == "ItemMatrix":
            for slot, values in enumerate(doc.get("_values") or [[], [], []], start=1):
                # One value is a plain string, none is "" (recorded in data.json).
                out[f"attribute{slot}Values"] = (
                    "" if not values else values[0] if len(values) == 1 else list(values)
                )

    # -- writes ------------------------------------------------------------------------------

    def create(self, kind: str, body: object, *, base_url: str) -> JSON:
        fields = _object(body)
        with self._tx():
            if kind == "Item":
                doc = self._create_item(fields)
            elif kind == "ItemMatrix":
                doc = self._create_matrix(fields)
            else:
                doc = self._create_plain(kind, fields)
            return _envelope(kind, self._render(kind, doc, (), base_url=base_url, echo=True))

    def update(self, kind: str, id: str, body: object, *, base_url: str) -> JSON:
        fields = _object(body)
        with self._tx():
            doc = self._find(kind, id)
            if kind == "Item":
                doc = self._update_item(doc, fields)
            elif kind == "ItemMatrix":
                doc = self._update_matrix(doc, fields)
            else:
                doc = self._update_plain(kind, doc, fields)
            return _envelope(kind, self._render(kind, doc, (), base_url=base_url, echo=True))

    def delete(self, kind: str, id: str, *, base_url: str) -> JSON:
        with self._tx():
            if kind == "Manufacturer":
                raise not_allowed("GET, POST, PUT")
            if kind == "ItemAttributeSet":
                raise not_allowed("GET, POST, PUT")
            doc = self._find(kind, id)
            now = self._now()
            if kind == "Item":
                self._archive_item(doc, now)
            elif kind == "ItemMatrix":
                doc.update(archived="true", timeStamp=now)
                self._put(kind, doc)
                for item in self._db.children("Item", f"ItemMatrix:{doc['itemMatrixID']}"):
                    if item["archived"] != "true":
                        self._archive_item(item, now)
            elif kind == "Vendor":
                doc.update(archived="true", timeStamp=now)
                self._put(kind, doc)
            elif kind == "Category":
                self._delete_category(doc)
            elif kind == "Tag":
                self._delete_tag(doc)
            elif kind == "Image":
                self._db.delete("Image", int(doc["imageID"]))
                self._db.delete_blob(doc["publicID"])
            return _envelope(kind, self._render(kind, doc, (), base_url=base_url))

    def _archive_item(self, doc: Doc, now: str) -> None:
        # Archiving zeroes the item's stock, irreversibly (section 7.3).
        doc.update(archived="true", timeStamp=now)
        for shop in doc.get("_shops") or []:
            shop["qoh"] = "0"
        self._put("Item", doc)

    def _put(self, kind: str, doc: Doc) -> None:
        resource = RESOURCES[kind]
        text = str(doc.get(resource.text_field, "")) if resource.text_field else ""
        self._db.put(
            kind, int(doc[resource.id_field]), doc, sort_text=text, parent=_parent(kind, doc)
        )

    def _new(self, kind: str, fields: JSON, verb: str) -> Doc:
        resource = RESOURCES[kind]
        now = self._now()
        doc: Doc = {}
        for name, default in resource.fields:
            doc[name] = default
        doc.update(self._scalars(resource, fields, verb))
        doc[resource.id_field] = str(self._db.next_value(kind))
        for stamp in _STAMPS & resource.field_names:
            doc[stamp] = now
        return doc

    def _scalars(self, resource: Resource, fields: JSON, verb: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in fields.items():
            if key not in resource.field_names or key in resource.read_only:
                continue  # unknown and read-only fields are ignored, as PUT merges
            out[key] = _scalar(resource.name, key, value, verb)
        return out

    def _check_refs(self, kind: str, doc: Doc, verb: str) -> None:
        for fk, target in (
            ("categoryID", "Category"),
            ("manufacturerID", "Manufacturer"),
            ("defaultVendorID", "Vendor"),
        ):
            value = doc.get(fk, "0")
            if value not in {"0", ""} and not self._exists(target, value):
                raise bad_request(f"{kind} not {verb}. {target} {value} does not exist.")

    def _prices(self, base: list[JSON], value: object, kind: str, verb: str) -> list[JSON]:
        rows = {row["useTypeID"]: dict(row) for row in base}
        for level, _ in PRICE_LEVELS:
            rows.setdefault(level, {"amount": "0", "useTypeID": level})
        for given in _container(value, "ItemPrice", kind, verb):
            level = str(given.get("useTypeID") or "")
            if not level:
                level = next((i for i, n in PRICE_LEVELS if n == given.get("useType")), "")
            if level not in rows:
                raise bad_request(f"{kind} not {verb}. Unknown price level {level or '?'}.")
            rows[level]["amount"] = _scalar(kind, "amount", given.get("amount", "0"), verb)
        return [rows[level] for level, _ in PRICE_LEVELS]

    def _tag_ids(self, value: object, kind: str, verb: str) -> list[str]:
        names = _container(value, "tag", kind, verb, scalars=True)
        ids: list[str] = []
        for name in names:
            if not isinstance(name, str) or not tag_name(name):
                raise bad_request(f"{kind} not {verb}. A tag must be a non-empty name.")
            ids.append(self._tag_for(name)["tagID"])
        return list(dict.fromkeys(ids))

    def _tag_for(self, name: str) -> Doc:
        key = tag_name(name)
        for doc in self._db.scan(
            "Tag", column="sort_text", descending=False, archived="true", bound=None
        ):
            if doc["name"] == key:
                return doc
        doc = self._new("Tag", {"name": key}, "created")
        self._put("Tag", doc)
        return doc

    def _vendor_nums(self, value: object, item_id: str, kind: str, verb: str) -> list[JSON]:
        out = []
        for given in _container(value, "ItemVendorNum", kind, verb):
            vendor = _scalar(kind, "vendorID", given.get("vendorID", "0"), verb)
            if not self._exists("Vendor", vendor):
                raise bad_request(f"{kind} not {verb}. Vendor {vendor} does not exist.")
            out.append(
                {
                    "itemVendorNumID": str(self._db.next_value("ItemVendorNum")),
                    "value": _scalar(kind, "value", given.get("value", ""), verb),
                    "timeStamp": self._now(),
                    "itemID": item_id,
                    "vendorID": vendor,
                }
            )
        return out

    # Items ---------------------------------------------------------------------------------

    def _create_item(self, fields: JSON) -> Doc:
        matrix_id = _scalar("Item", "itemMatrixID", fields.get("itemMatrixID", "0"), "created")
        matrix: Doc | None = None
        if matrix_id not in {"0", ""}:
            if not self._exists("ItemMatrix", matrix_id):
                raise bad_request(f"Item not created. ItemMatrix {matrix_id} does not exist.")
            matrix = self._find("ItemMatrix", matrix_id)
            # A variant takes its matrix's defaults for what it does not say [choice].
            inherited = {
                k: matrix[k]
                for k in (
                    "defaultCost",
                    "tax",
                    "categoryID",
                    "manufacturerID",
                    "defaultVendorID",
                    "taxClassID",
                )
                if k not in fields
            }
            fields = {**inherited, **fields}
        doc = self._new("Item", fields, "created")
        doc["systemSku"] = str(210000000000 + int(doc["itemID"]))
        attributes: JSON | None = None
        if matrix is not None:
            attributes = self._item_attributes(
                matrix, fields.get("ItemAttributes"), None, "created"
            )
            doc["_attributes"] = attributes
            if not str(fields.get("description") or "").strip():
                values = [attributes[f"attribute{n}"] for n in (1, 2, 3)]
                doc["description"] = " ".join([matrix["description"], *[v for v in values if v]])
        if not doc["description"].strip():
            raise bad_request("Item not created. An Item must have a description.")
        self._check_refs("Item", doc, "created")
        base = (matrix or {}).get("_prices") or []
        doc["_prices"] = self._prices(base, fields.get("Prices"), "Item", "created")
        now = doc["timeStamp"]
        doc["_shops"] = [
            {
                "itemShopID": str(self._db.next_value("ItemShop")),
                "qoh": "0",
                "backorder": "0",
                "componentQoh": "0",
                "componentBackorder": "0",
                "reorderPoint": "0",
                "reorderLevel": "0",
                "timeStamp": now,
                "itemID": doc["itemID"],
                "shopID": shop,
            }
            for shop in (SHOP_ID, "0")
        ]
        doc["_vendor_nums"] = self._vendor_nums(
            fields.get("ItemVendorNums"), doc["itemID"], "Item", "created"
        )
        doc["_tags"] = self._tag_ids(fields.get("Tags"), "Item", "created")
        if matrix is not None and attributes is not None:
            doc["itemAttributesID"] = doc["itemID"]
            self._join_values(matrix, attributes)
        self._put("Item", doc)
        return doc

    def _item_attributes(self, matrix: Doc, value: object, own_id: str | None, verb: str) -> JSON:
        given = value if isinstance(value, dict) else {}
        if value not in (None, "") and not isinstance(value, dict):
            raise bad_request(f"Item not {verb}. ItemAttributes must be an object.")
        set_id = matrix["itemAttributeSetID"]
        asked = _scalar("Item", "itemAttributeSetID", given.get("itemAttributeSetID", set_id), verb)
        if asked != set_id:
            raise bad_request(
                f"Item not {verb}. ItemAttributeSet {asked} is not the set of ItemMatrix "
                f"{matrix['itemMatrixID']} ({set_id})."
            )
        attribute_set = self._find("ItemAttributeSet", set_id)
        block: JSON = {}
        for n in (1, 2, 3):
            text = _scalar("Item", f"attribute{n}", given.get(f"attribute{n}", ""), verb).strip()
            if text and not attribute_set[f"attributeName{n}"]:
                raise bad_request(
                    f"Item not {verb}. ItemAttributeSet {set_id} has no attribute {n}."
                )
            block[f"attribute{n}"] = text
        block["itemAttributeSetID"] = set_id
        combo = tuple(block[f"attribute{n}"].casefold() for n in (1, 2, 3))
        for other in self._db.children("Item", f"ItemMatrix:{matrix['itemMatrixID']}"):
            theirs = other.get("_attributes")
            if (
                other["itemID"] != own_id
                and other["archived"] != "true"
                and theirs
                and tuple(theirs[f"attribute{n}"].casefold() for n in (1, 2, 3)) == combo
            ):
                raise bad_request(
                    f"Item not {verb}. Item {other['itemID']} already has these attributes in "
                    f"ItemMatrix {matrix['itemMatrixID']}."
                )
        return block

    def _join_values(self, matrix: Doc, attributes: JSON) -> None:
        values = [list(v) for v in matrix.get("_values") or [[], [], []]]
        for n in (1, 2, 3):
            text = attributes[f"attribute{n}"]
            if text and text not in values[n - 1]:
                values[n - 1].append(text)
        if values != matrix.get("_values"):
            matrix["_values"] = values
            self._put("ItemMatrix", matrix)

    def _update_item(self, doc: Doc, fields: JSON) -> Doc:
        if (
            "itemMatrixID" in fields
            and _scalar("Item", "itemMatrixID", fields["itemMatrixID"], "updated")
            != doc["itemMatrixID"]
        ):
            raise bad_request("Item not updated. An Item cannot move to another ItemMatrix.")
        changes = self._scalars(RESOURCES["Item"], fields, "updated")
        changes.pop("itemMatrixID", None)
        doc.update(changes)
        if "description" in fields and not doc["description"].strip():
            raise bad_request("Item not updated. An Item must have a description.")
        if str(fields.get("archived", "")).lower() == "false":
            doc["archived"] = "false"  # PUT restores; it cannot archive (section 7.3)
        self._check_refs("Item", doc, "updated")
        if "Prices" in fields:
            doc["_prices"] = self._prices(doc["_prices"], fields["Prices"], "Item", "updated")
        if "ItemVendorNums" in fields:
            doc["_vendor_nums"] = self._vendor_nums(
                fields["ItemVendorNums"], doc["itemID"], "Item", "updated"
            )
        if "Tags" in fields:
            doc["_tags"] = self._tag_ids(fields["Tags"], "Item", "updated")
        if "ItemAttributes" in fields and doc["itemMatrixID"] != "0":
            matrix = self._find("ItemMatrix", doc["itemMatrixID"])
            doc["_attributes"] = self._item_attributes(
                matrix, fields["ItemAttributes"], doc["itemID"], "updated"
            )
            self._join_values(matrix, doc["_attributes"])
        doc["timeStamp"] = self._now()
        self._put("Item", doc)
        return doc

    # Matrices ------------------------------------------------------------------------------

    def _create_matrix(self, fields: JSON) -> Doc:
        doc = self._new("ItemMatrix", fields, "created")
        if not doc["description"].strip():
            raise bad_request("ItemMatrix not created. An ItemMatrix must have a description.")
        set_id = doc["itemAttributeSetID"]
        if set_id in {"0", ""} or not self._exists("ItemAttributeSet", set_id):
            raise bad_request(
                "ItemMatrix not Created. You must set an ItemAttributeSet to create an ItemMatrix."
            )
        self._check_refs("ItemMatrix", doc, "created")
        doc["_prices"] = self._prices([], fields.get("Prices"), "ItemMatrix", "created")
        doc["_values"] = [[], [], []]
        doc["_tags"] = self._tag_ids(fields.get("Tags"), "ItemMatrix", "created")
        self._put("ItemMatrix", doc)
        return doc

    def _update_matrix(self, doc: Doc, fields: JSON) -> Doc:
        changes = self._scalars(RESOURCES["ItemMatrix"], fields, "updated")
        if (
            changes.get("itemAttributeSetID", doc["itemAttributeSetID"])
            != doc["itemAttributeSetID"]
        ):
            raise bad_request(
                "ItemMatrix not updated. The ItemAttributeSet of an ItemMatrix cannot change."
            )
        doc.update(changes)
        if "description" in fields and not doc["description"].strip():
            raise bad_request("ItemMatrix not updated. An ItemMatrix must have a description.")
        if str(fields.get("archived", "")).lower() == "false":
            doc["archived"] = "false"
        self._check_refs("ItemMatrix", doc, "updated")
        if "Prices" in fields:
            doc["_prices"] = self._prices(doc["_prices"], fields["Prices"], "ItemMatrix", "updated")
        if "Tags" in fields:
            doc["_tags"] = self._tag_ids(fields["Tags"], "ItemMatrix", "updated")
        doc["timeStamp"] = self._now()
        self._put("ItemMatrix", doc)
        return doc

    # Plain kinds ---------------------------------------------------------------------------

    def _create_plain(self, kind: str, fields: JSON) -> Doc:
        name = str(fields.get("name") or "").strip()
        if not name:
            raise bad_request("name cannot be blank.")
        if kind == "Tag":
            return self._tag_for(name)
        doc = self._new(kind, fields, "created")
        if kind == "Category":
            parent = doc["parentID"]
            if parent not in {"0", ""} and not self._exists("Category", parent):
                raise bad_request(f"Category not created. Category {parent} does not exist.")
            self._put(kind, doc)
            self._rebuild_tree()
            return self._find(kind, doc["categoryID"])
        self._put(kind, doc)
        return doc

    def _update_plain(self, kind: str, doc: Doc, fields: JSON) -> Doc:
        if kind == "ItemAttributeSet" and doc["system"] == "true":
            raise bad_request("System ItemAttributeSets cannot be changed.")
        changes = self._scalars(RESOURCES[kind], fields, "updated")
        if "name" in changes and not changes["name"].strip():
            raise bad_request("name cannot be blank.")
        if kind == "Tag" and "name" in changes:
            changes["name"] = tag_name(changes["name"])
        doc.update(changes)
        if kind == "Vendor" and str(fields.get("archived", "")).lower() == "false":
            doc["archived"] = "false"
        if "timeStamp" in doc:
            doc["timeStamp"] = self._now()
        if kind == "Category":
            parent = doc["parentID"] or "0"
            if parent != "0":
                if not self._exists("Category", parent):
                    raise bad_request(f"Category not updated. Category {parent} does not exist.")
                if self._is_below(parent, doc["categoryID"]):
                    raise bad_request(
                        "Category not updated. A category cannot be moved below itself."
                    )
            self._put(kind, doc)
            self._rebuild_tree()
            return self._find(kind, doc["categoryID"])
        self._put(kind, doc)
        return doc

    def _is_below(self, candidate: str, ancestor: str) -> bool:
        seen = set()
        while candidate not in {"0", ""} and candidate not in seen:
            if candidate == ancestor:
                return True
            seen.add(candidate)
            found = self._db.get("Category", int(candidate))
            candidate = "0" if found is None else found["parentID"]
        return False

    def _rebuild_tree(self) -> None:
        """Recompute depth, path and the nested-set numbers of every category. A category
        whose path or depth changed gets a new `timeStamp` [choice]."""
        docs = {d["categoryID"]: d for d in self._db.all("Category")}
        children: dict[str, list[str]] = {}
        for ident in sorted(docs, key=int):
            children.setdefault(docs[ident]["parentID"] or "0", []).append(ident)
        counter = 0
        now = self._now()

        def walk(ident: str, depth: int, path: str) -> None:
            nonlocal counter
            counter += 1
            doc = docs[ident]
            full = f"{path}/{doc['name']}" if path else doc["name"]
            left = str(counter)
            for child in children.get(ident, []):
                walk(child, depth + 1, full)
            counter += 1
            new = {
                "nodeDepth": str(depth),
                "fullPathName": full,
                "leftNode": left,
                "rightNode": str(counter),
            }
            moved = (
                new["fullPathName"] != doc["fullPathName"] or new["nodeDepth"] != doc["nodeDepth"]
            )
            if any(doc[k] != v for k, v in new.items()):
                doc.update(new)
                if moved:
                    doc["timeStamp"] = now
                self._put("Category", doc)

        for root in children.get("0", []):
            walk(root, 0, "")

    def _delete_category(self, doc: Doc) -> None:
        ident = doc["categoryID"]
        if any(d["parentID"] == ident for d in self._db.all("Category")):
            raise bad_request(f"Category {ident} cannot be deleted while it has child categories.")
        self._db.delete("Category", int(ident))
        now = self._now()
        for kind in ("Item", "ItemMatrix"):
            for record in self._db.all(kind):
                if record["categoryID"] == ident:
                    record.update(categoryID="0", timeStamp=now)
                    self._put(kind, record)
        self._rebuild_tree()

    def _delete_tag(self, doc: Doc) -> None:
        # A hard delete that untags every record and leaves no trace in their timeStamp.
        ident = doc["tagID"]
        self._db.delete("Tag", int(ident))
        for kind in ("Item", "ItemMatrix"):
            for record in self._db.all(kind):
                if ident in (record.get("_tags") or []):
                    record["_tags"] = [t for t in record["_tags"] if t != ident]
                    self._put(kind, record)

    # Images --------------------------------------------------------------------------------

    def upload_image(
        self,
        owner: str,
        owner_id: str,
        data: object,
        *,
        filename: str,
        content: bytes,
        media_type: str,
        base_url: str,
    ) -> JSON:
        """A multipart upload to `Item/{id}/Image.json` or `ItemMatrix/{id}/Image.json`;
        synchronous, no de-duplication [choice]."""
        fields = _object(data) if data is not None else {}
        if not content:
            raise bad_request("Image not created. The image part is empty.")
        if len(content) > MAX_IMAGE_BYTES:
            raise bad_request("Image not created. The image is larger than 10 MB.")
        with self._tx():
            parent = self._find(owner, owner_id)
            doc = self._new("Image", fields, "created")
            doc["filename"] = filename
            doc["publicID"] = f"sandbox/{secrets.token_hex(10)}"
            doc["size"] = str(len(content))
            if owner == "Item":
                doc["itemID"] = parent["itemID"]
            else:
                doc["itemMatrixID"] = parent["itemMatrixID"]
            try:
                if int(doc["ordering"]) < 0:
                    raise ValueError
            except ValueError:
                raise bad_request("Image not created. ordering must be a whole number.") from None
            self._db.put_blob(doc["publicID"], media_type, content)
            self._put("Image", doc)
            return _envelope("Image", self._render("Image", doc, (), base_url=base_url))

    def image_bytes(self, public_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            return self._db.blob(public_id)


def _parent(kind: str, doc: Doc) -> str:
    if kind == "Item" and doc["itemMatrixID"] != "0":
        return f"ItemMatrix:{doc['itemMatrixID']}"
    if kind == "Image":
        if doc["itemMatrixID"] != "0":
            return f"ItemMatrix:{doc['itemMatrixID']}"
        return f"Item:{doc['itemID']}"
    return ""


def _known(resource: Resource) -> list[str]:
    names = resource.relation_names()
    return [*names, "TagRelations"] if "Tags" in names else names


def _archived_ok(doc: Doc, mode: str) -> bool:
    archived = doc.get("archived") == "true"
    return mode == "true" or (mode == "only") == archived


def _ts_range(filters: list[q.Filter]) -> tuple[str | None, str | None]:
    """A superset of the `timeStamp` filters for the index: whole seconds, UTC."""
    low: str | None = None
    high: str | None = None
    for flt in filters:
        if flt.field != "timeStamp":
            continue
        if flt.op in {">", ">="}:
            low = _utc_text(flt.values[0], up=False)
        elif flt.op in {"<", "<="}:
            high = _utc_text(flt.values[0], up=True)
        elif flt.op == "><":
            low = _utc_text(flt.values[0], up=False)
            high = _utc_text(flt.values[1], up=True)
    return low, high


def _image_wire(doc: JSON, base_url: str) -> JSON:
    out = dict(doc)
    # The sandbox's own CDN: baseImageURL + publicID + ".jpg" is the picture.
    out["baseImageURL"] = f"{base_url}/cdn/rseries/"
    return out


def _envelope(kind: str, record: JSON) -> JSON:
    return {"@attributes": {"count": "1"}, kind: record}


def _object(body: object) -> JSON:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object, the bare entity.")
    return body


def _container(
    value: object, key: str, kind: str, verb: str, *, scalars: bool = False
) -> list[Any]:
    """A nested container as clients send it: `{"Key": obj-or-list}`, a list, or ""."""
    if value in (None, "", [], {}):
        return []
    if isinstance(value, dict):
        value = value.get(key, [])
    rows = value if isinstance(value, list) else [value]
    for row in rows:
        wrong = isinstance(row, dict | list) if scalars else not isinstance(row, dict)
        if wrong:
            raise bad_request(f"{kind} not {verb}. {key} is malformed.")
    return rows


def _scalar(kind: str, key: str, value: object, verb: str) -> str:
    """A written value as the store keeps it: a string; money without trailing zeros."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | Decimal | str):
        text = str(value)
    elif value is None:
        text = ""
    else:
        raise bad_request(f"{kind} not {verb}. {key} must be a single value.")
    if key in MONEY:
        try:
            amount = Decimal(text or "0")
        except InvalidOperation:
            raise bad_request(f"{kind} not {verb}. {key} must be a number.") from None
        if not amount.is_finite():
            raise bad_request(f"{kind} not {verb}. {key} must be a number.")
        text = format(amount.normalize(), "f") if amount else "0"
    return text


def cost_of(
    method: str,
    kind: str | None,
    *,
    params: Mapping[str, str],
    body: object,
    single: bool,
) -> float:
    """A request's cost in bucket units (section 5, since 2026-03-17)."""
    if kind == "Category" and method in {"POST", "PUT"}:
        return 10.0
    if method == "GET" and params.get("count") == "1":
        return 10.0
    cost = 1.0
    resource = RESOURCES.get(kind or "")
    if method == "GET" and resource is not None:
        try:
            relations = q.parse_relations(params.get("load_relations"), _known(resource))
        except RSeriesError:
            relations = []
        arity = dict(resource.relations)
        names = {"Tags" if r == "TagRelations" else r for r in relations}
        extra = sum(0.2 if arity.get(r) else 0.1 for r in names)
        cost += extra * (1 if single else 2)
    if method in {"POST", "PUT"}:
        cost += 0.5 * _nested_entities(body)
    return round(cost, 3)


def _nested_entities(body: object, depth: int = 0) -> int:
    """Objects below the top level of a body that carry a value of their own."""
    if isinstance(body, list):
        return sum(_nested_entities(v, depth) for v in body)
    if not isinstance(body, dict):
        return 0
    own = depth > 0 and any(not isinstance(v, dict | list) for v in body.values())
    return int(own) + sum(_nested_entities(v, depth + 1) for v in body.values())
