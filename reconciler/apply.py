"""Apply a plan: exactly the plan's changes, with the fewest requests, crash-safe, concurrent.

The plan (`reconciler.plan.Plan`) is turned into *steps*, each one write request under the API's
rules (lightspeed-xseries.md §5-6):

- one POST per new brand, supplier, tag or variant attribute, one PUT per changed brand or
  supplier, and one bulk POST for every new category;
- one `POST /2.0/products` per new product, with all its variants;
- per existing family: one 2.1 PUT per variant whose own fields changed, the family-wide fields
  riding along as `common` in the first of them; one 2.1 PUT of their own only when no variant
  changed; one 2.1 POST per variant added;
- prune: one PUT `is_active: false` per row to deactivate, one DELETE per product or variant;
- nothing for an unchanged or adopted object.
So the requests sent equal the plan's estimate (`Change.requests`), barring retries and lookups.

Steps depend on the steps that create what they reference (a family on its new brand, an added
variant on its family's renamed `common`); independent steps run concurrently on
`parallelism` threads sharing one client. A step starts only when the store's rate-limit window
has room for it: the client counts every request of the window, the refresh and look-ups as
much as the writes (its 429 waits stay the backstop). A step that
fails does not stop the others; the steps that depend on it are skipped and reported.

Crash safety (design invariant 6): before a create is sent, an intent row is written; after
the answer, it is finished. A create whose answer never came (timeout, dropped connection), or
whose intent a crashed run left pending, is looked up by SKU or name before anything is sent
again, and a 422 naming an `*_existing_id` is checked the same way. So a rerun after any crash
finishes the remaining work without a duplicate.

Every change ends in the ledger (applied, failed or skipped) and every applied one updates the
managed table with the values written, which is what drift detection reads. Only the thread
that called `apply_plan` touches the state file; workers only talk to the store.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path, PurePosixPath

from reconciler.errors import (
    ApiError,
    CatalogError,
    TransportError,
    Unconfirmed,
    Unresolved,
    redact,
)
from reconciler.live import Live, family_values, label_path, path_key, row_values
from reconciler.model import FORMAT_VERSION, Json, name_key
from reconciler.plan import Action, Change, Estimate, FieldChange, Kind, Plan
from reconciler.planner import new_family_active
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.normalize import (
    barcode_type,
    category_parent,
    normalize_categories,
    oldest_first,
    price_field,
)
from reconciler.rules import image_type
from reconciler.state import State
from reconciler.state.ledger import Adoption, Ledger
from reconciler.state.lock import ApplyLock

# A create whose answer is lost is looked up and, if absent, sent again at most this often.
MAX_CREATE_ATTEMPTS = 4
_NAME_KINDS = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG, Kind.ATTRIBUTE)
_RETIRE = (Action.DEACTIVATE, Action.DELETE)
# Adoptions recorded per transaction: large enough that a big store's adoption is a few
# statements, small enough that the lock's renewal thread waits milliseconds for the file.
ADOPT_BATCH = 2_000


def default_parallelism(estimate: Estimate) -> int:
    """Enough threads to spend a window's budget well within the window.

    A write takes roughly 0.15-0.5 s; with `limit / window` requests allowed per second, about
    that many in flight keep the pipe full, and the client's window meter stops them at the limit.
    Bounded to 4..16: fewer wastes a small window, more only crowds the store.
    """
    per_second = estimate.rate_limit / max(estimate.window_seconds, 1.0)
    return max(4, min(16, math.ceil(per_second)))


# -- values the caller sees ------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeOutcome:
    """What happened to one change of the plan."""

    kind: str
    key: str
    action: str
    outcome: str  # applied | failed | skipped
    fields: tuple[FieldChange, ...] = ()
    remote_id: str | None = None
    remote_version: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Json]:
        return {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "outcome": self.outcome,
            "fields": [
                {"field": f.field, "before": f.before, "after": f.after} for f in self.fields
            ],
            "remote_id": self.remote_id,
            "remote_version": self.remote_version,
            "error": self.error,
        }


@dataclass(frozen=True)
class ApplyEvent:
    """Progress for the CLI to render and tests to collect.

    `type`: `start` (planned known), `progress` (a write finished), `change` (an outcome),
    `notice` (a remark), `finish`. Counts are cumulative.
    """

    type: str
    done: int = 0  # planned write requests finished (applied or failed)
    planned: int = 0
    rate_limited: int = 0  # 429 answers the client drew so far
    waited_seconds: float = 0.0  # time threads spent waiting for the rate limit or backoff
    change: ChangeOutcome | None = None
    message: str = ""


@dataclass(frozen=True)
class ApplyResult:
    run_id: int
    outcome: str  # applied | partial
    changes: tuple[ChangeOutcome, ...]
    planned_requests: int  # the plan's estimate
    step_requests: int  # the writes the rules call for (what the steps were built from)
    requests: int  # every HTTP request this apply sent (retries, lookups, refresh included)
    writes: int  # write requests sent (a create sent again after a lookup counts twice)
    rate_limited: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome == "applied"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"applied": 0, "failed": 0, "skipped": 0}
        for c in self.changes:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out

    def to_json(self) -> dict[str, Json]:
        return {
            "format_version": FORMAT_VERSION,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "counts": self.counts(),
            "requests": {
                "planned": self.planned_requests,
                "writes": self.writes,
                "total": self.requests,
                "rate_limited": self.rate_limited,
            },
            "seconds": round(self.seconds, 2),
            "changes": [c.to_json() for c in self.changes],
        }


# -- ids of live objects, growing as creates finish --------------------------------------------


class Ids:
    """Name -> id and handle/SKU -> id for everything a payload may reference.

    Seeded from the live store and taught each created object's id as its step finishes.
    Used only by the thread running `apply_plan` (payloads are built there, just before a step
    is handed to a worker, when everything it depends on is known).
    """

    def __init__(self, live: Live) -> None:
        self.live = live
        names = live.names
        self.named: dict[str, dict[str, str]] = {
            str(Kind.BRAND): {k: n.id for k, n in names.brands.items()},
            str(Kind.SUPPLIER): {k: n.id for k, n in names.suppliers.items()},
            str(Kind.TAG): {k: n.id for k, n in names.tags.items()},
            str(Kind.ATTRIBUTE): {k: n.id for k, n in names.attributes.items()},
        }
        self.categories: dict[tuple[str, ...], str] = {k: c.id for k, c in names.categories.items()}
        self.products: dict[str, str] = {h: p.remote_id for h, p in live.products.items()}
        self.rows: dict[str, str] = {
            sku: row.id for p in live.products.values() for sku, row in p.rows.items()
        }

    def name(self, kind: Kind, name: str) -> str:
        found = self.named[str(kind)].get(name_key(name))
        if found is None:
            raise Unresolved(f'{kind} "{name}" does not exist in the store (its create failed)')
        return found

    def category(self, label: str) -> str:
        found = self.categories.get(path_key(label_path(label)))
        if found is None:
            raise Unresolved(f'category "{label}" does not exist in the store')
        return found

    def learn(self, learned: Mapping[tuple[str, str], str]) -> None:
        for (kind, key), remote_id in learned.items():
            if kind in self.named:
                self.named[kind][name_key(key)] = remote_id
            elif kind == str(Kind.CATEGORY):
                self.categories[path_key(label_path(key))] = remote_id
            elif kind == str(Kind.PRODUCT):
                self.products[key] = remote_id
            elif kind == str(Kind.VARIANT):
                self.rows[key] = remote_id


# -- the family as it will be once this plan's family-wide changes are applied -----------------


@dataclass(frozen=True)
class Family:
    """What a row's payload needs to know about its family: name, supplier, options."""

    handle: str
    name: str
    supplier: str | None
    supplier_code: str | None
    options: tuple[str, ...]
    is_family: bool

    @staticmethod
    def of(change: Change, live: Live) -> Family:
        after = {f.field: f.after for f in change.fields}
        found = live.products.get(change.key)
        current = family_values(found.product, declared_only=False) if found else {}
        merged = {**current, **after}
        return Family(
            handle=change.key,
            name=str(merged.get("name") or ""),
            supplier=merged.get("supplier") or None,
            supplier_code=merged.get("supplier_code") or None,
            options=tuple(merged.get("options") or ()),
            is_family=found.is_family if found else bool(change.children),
        )


def _money(text: Json) -> float:
    # Prices arrive as decimal strings at the store's precision; JSON carries numbers, and a
    # float's shortest repr gives those digits back exactly.
    return float(Decimal(str(text)))


def _codes(sku: str, barcode: str | None) -> list[dict[str, str]]:
    # The whole list is replaced (lightspeed-xseries.md §6.4): keep the SKU as the first CUSTOM
    # code.
    codes = [{"type": "CUSTOM", "code": sku}]
    if barcode:
        codes.append({"type": barcode_type(barcode), "code": barcode})
    return codes


def common_payload(values: Mapping[str, Json], family: Family, ids: Ids) -> dict[str, Json]:
    """Family-wide catalog fields -> the 2.1 PUT's `common` section."""
    out: dict[str, Json] = {}
    for name, value in values.items():
        if name == "name":
            out["name"] = value
        elif name == "description":
            out["description"] = value or ""
        elif name == "brand":
            out["brand_id"] = ids.name(Kind.BRAND, value) if value else ""
        elif name == "category":
            out["product_category_id"] = ids.category(value) if value else ""
        elif name == "tags":
            out["tag_ids"] = [ids.name(Kind.TAG, t) for t in value or []]
        elif name == "options":
            out["variant_attributes"] = [
                {"attribute_id": ids.name(Kind.ATTRIBUTE, o)} for o in value or []
            ]
    if "supplier" in values or "supplier_code" in values:
        # Supplier and its code travel together as the family's first product supplier.
        entry: dict[str, Json] = {}
        if family.supplier:
            entry["supplier_id"] = ids.name(Kind.SUPPLIER, family.supplier)
        if family.supplier_code is not None:
            entry["code"] = family.supplier_code
        out["product_suppliers"] = [entry] if entry else []
    return out


def details_payload(
    values: Mapping[str, Json], sku: str, family: Family, ids: Ids, *, tax_exclusive: bool
) -> dict[str, Json]:
    """A row's own catalog fields -> the 2.1 PUT's (or POST's) `details` section."""
    out: dict[str, Json] = {}
    for name, value in values.items():
        if name == "price" and value is not None:
            out[price_field(tax_exclusive)] = _money(value)
        elif name == "supply_price" and value is not None:
            entry: dict[str, Json] = {"price": _money(value)}
            if family.supplier:
                entry["supplier_id"] = ids.name(Kind.SUPPLIER, family.supplier)
            out["product_suppliers"] = [entry]
        elif name == "barcode":
            out["product_codes"] = _codes(sku, value)
        elif name == "active" and value is not None:
            out["is_active"] = bool(value)
        elif name == "options" and value:
            out["variant_attribute_values"] = [
                {"attribute_id": ids.name(Kind.ATTRIBUTE, k), "attribute_value": v}
                for k, v in value.items()
            ]
    return out


def create_payload(change: Change, ids: Ids, *, tax_exclusive: bool) -> dict[str, Json]:
    """A new product (with all its variants) -> the 2.0 create body."""
    values = {f.field: f.after for f in change.fields}
    body: dict[str, Json] = {"name": values["name"], "handle": change.key}
    if values.get("description") is not None:
        body["description"] = values["description"]
    if values.get("brand"):
        body["brand_id"] = ids.name(Kind.BRAND, values["brand"])
    if values.get("supplier"):
        body["supplier_id"] = ids.name(Kind.SUPPLIER, values["supplier"])
    if values.get("supplier_code") is not None:
        body["supplier_code"] = values["supplier_code"]
    if values.get("category"):
        body["product_category_id"] = ids.category(values["category"])
    if values.get("tags") is not None:
        body["tag_ids"] = [ids.name(Kind.TAG, t) for t in values["tags"]]
    price_key = price_field(tax_exclusive)
    variants = [c for c in change.children if c.kind is Kind.VARIANT]
    if not variants:
        sku = values.get("sku")
        if sku:
            body["sku"] = sku
            body["product_codes"] = _codes(sku, values.get("barcode"))
        if values.get("price") is not None:
            body[price_key] = _money(values["price"])
        if values.get("supply_price") is not None:
            body["supply_price"] = _money(values["supply_price"])
        body["is_active"] = values.get("active") is not False
        return body
    body["is_active"] = family_active(change)
    rows = []
    for v in variants:
        own = {f.field: f.after for f in v.fields}
        row: dict[str, Json] = {"sku": v.key, "product_codes": _codes(v.key, own.get("barcode"))}
        if own.get("price") is not None:
            row[price_key] = _money(own["price"])
        if own.get("supply_price") is not None:
            row["supply_price"] = _money(own["supply_price"])
        row["variant_definitions"] = [
            {"attribute_id": ids.name(Kind.ATTRIBUTE, k), "value": val}
            for k, val in (own.get("options") or {}).items()
        ]
        rows.append(row)
    body["variants"] = rows
    return body


def family_active(change: Change) -> bool:
    """The `is_active` a new family is created with (see `plan.new_family_active`)."""
    return new_family_active(
        [
            {f.field: f.after for f in v.fields}.get("active")
            for v in change.children
            if v.kind is Kind.VARIANT
        ]
    )


# -- steps: one write request each -----------------------------------------------------------

Learned = dict[tuple[str, str], str]  # (kind, key) -> remote id


@dataclass(eq=False)
class Step(ABC):
    """One write request and the plan changes it carries out.

    `prepare` builds the payload (on the coordinating thread, once the steps it depends on are
    done); `run` sends it (on a worker) and returns the ids it learned.
    """

    id: int
    label: str
    changes: list[Change]
    deps: set[int] = field(default_factory=set)
    requests: int = 1
    payload: Json = None

    # A create (intents, lookups) sets this to (kind, key).
    intent: tuple[str, str] | None = None
    lookup_first: bool = False

    @abstractmethod
    def prepare(self, ids: Ids) -> None: ...

    @abstractmethod
    def run(self, client: Client, counter: WriteCounter) -> Learned: ...

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        """Record what this step made beyond the ledger's change rows (caller's thread)."""
        return None

    def before_send(self, ledger: Ledger) -> None:
        """Record, before the request goes out, what a lost answer must not make forgotten
        (caller's thread, after `prepare`)."""
        return None

    def digest(self) -> str:
        blob = json.dumps(self.payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


class WriteCounter:
    """Write requests sent by steps, counted by the workers that send them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class CreateStep(Step):
    """A create: intent first; an unknown outcome is looked up, never blindly re-sent."""

    @abstractmethod
    def send(self, client: Client) -> Learned: ...

    @abstractmethod
    def lookup(self, client: Client) -> Learned | None:
        """What the store holds for this object, or None if it is not there."""

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        if self.lookup_first:  # a crashed run's intent: the object may already exist
            found = self.lookup(client)
            if found is not None:
                return found
        for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
            try:
                counter.add()
                return self.send(client)
            except TransportError as lost:
                try:
                    found = self.lookup(client)
                except CatalogError:
                    raise lost from None  # could not look: the outcome stays unknown
                if found is not None:
                    return found
                if attempt == MAX_CREATE_ATTEMPTS:
                    raise
            except ApiError as exc:
                if not existing_ids(exc):
                    raise
                found = self.lookup(client)
                if found is not None:
                    return found
                raise
        raise AssertionError("unreachable")


def existing_ids(exc: ApiError) -> dict[str, str]:
    """The `*_existing_id` fields of a 422 (lightspeed-xseries.md §6.5): what the store says is
    there."""
    body = exc.body if isinstance(exc.body, dict) else {}
    fields = body.get("fields") if isinstance(body.get("fields"), dict) else body
    if exc.status != 422 or not isinstance(fields, dict):
        return {}
    return {k: str(v) for k, v in fields.items() if k.endswith("_existing_id") and v}


_FEED_NAME_KINDS = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG)
# A page shorter than the API's default page size (100, lightspeed-xseries.md §3) is the last one:
# every store serves at least that many. So a census of a small kind is one request, not two.
_SURE_PAGE = 100
# The pause before new categories are checked a second time for a racing apply's (seconds).
SETTLE_AGAIN_SECONDS = 0.2


class Census:
    """What the store holds of each named kind, read once per apply (one list read per kind,
    shared by every create of that kind, whatever the cache says), just before the first
    create of that kind is sent.

    Two applies from two state files never see each other's cache, so a name is looked up in
    the store itself before it is created. Because they may still look at the same moment,
    a create of a brand, supplier or tag is followed by one read of what changed since the
    census: when an older object of the same name turns up, ours is deleted again and the
    older one used (`oldest_first`), so racing applies settle on one object. (Variant
    attributes need no such read: the store refuses a second one with a 422 naming it.)
    """

    def __init__(self) -> None:
        self._locks = {k: threading.Lock() for k in (*_NAME_KINDS, Kind.CATEGORY)}
        self._read: dict[Kind, tuple[list[Json], int | None]] = {}

    def objects(self, client: Client, kind: Kind) -> tuple[list[Json], int | None]:
        """The live objects of `kind` and the highest version among them (None without a
        change feed). Threads asking together wait for the one read."""
        with self._locks[kind]:
            if kind not in self._read:
                self._read[kind] = _read_kind(client, kind)
            return self._read[kind]


def _read_kind(client: Client, kind: Kind) -> tuple[list[Json], int | None]:
    if kind is Kind.ATTRIBUTE:
        return list(client.variant_attributes()), None
    if kind is Kind.CATEGORY:
        return list(client.product_categories()), None
    objects: list[Json] = []
    highest: int | None = None
    for page in client.iter_pages(str(kind), known_page_cap=_SURE_PAGE):
        objects.extend(page.items)
        if page.max_version is not None:
            highest = max(highest or 0, page.max_version)
    return objects, highest


def _oldest_named(objects: Iterable[Json], name: str) -> Json | None:
    wanted = name_key(name)
    same = [
        o
        for o in objects
        if not o.get("deleted_at") and o.get("id") and name_key(str(o.get("name") or "")) == wanted
    ]
    return min(same, key=oldest_first) if same else None


class NameCreate(CreateStep):
    def __init__(self, id: int, change: Change, census: Census | None = None) -> None:
        super().__init__(id, f"create {change.kind} {change.key}", [change])
        self.kind = change.kind
        self.name = change.key
        self.intent = (str(change.kind), change.key)
        values = {f.field: f.after for f in change.fields}
        self.description = values.get("description")
        self.census = census or Census()

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        # Looked up in the store just before it is created, whatever the cache said: another
        # state file (a laptop, another CI runner) may have made it since.
        objects, since = self.census.objects(client, self.kind)
        found = _oldest_named(objects, self.name)
        if found is not None:
            return {(str(self.kind), self.name): str(found["id"])}
        self.lookup_first = False  # the census was the look-up
        learned = super().run(client, counter)
        if self.kind not in _FEED_NAME_KINDS:
            return learned
        try:
            return self._settle(client, counter, learned, since)
        except CatalogError:
            # Ours exists for certain; only the race check failed. It is used, and a later
            # plan names any duplicate (a notice) while using the oldest.
            return learned

    def _settle(
        self, client: Client, counter: WriteCounter, learned: Learned, since: int | None
    ) -> Learned:
        """After our create: if an older object of this name appeared since the census (a
        racing apply made it), ours goes and the older one is used."""
        ours = learned.get((str(self.kind), self.name))
        pages = client.iter_pages(str(self.kind), after=since, known_page_cap=_SURE_PAGE)
        newer = [o for page in pages for o in page.items]
        oldest = _oldest_named(newer, self.name)
        if ours is None or oldest is None or str(oldest["id"]) == ours:
            return learned
        counter.add()
        try:
            client.delete_named(str(self.kind), ours)
        except ApiError as exc:
            if exc.status != 404:
                raise
        return {(str(self.kind), self.name): str(oldest["id"])}

    def prepare(self, ids: Ids) -> None:
        self.payload = {"name": self.name, "description": self.description}

    def send(self, client: Client) -> Learned:
        if self.kind is Kind.BRAND:
            new_id = client.create_brand(self.name, self.description)
        elif self.kind is Kind.SUPPLIER:
            new_id = client.create_supplier(self.name, self.description)
        elif self.kind is Kind.TAG:
            new_id = client.create_tag(self.name)
        else:
            new_id = str(client.create_variant_attribute(self.name)["id"])
        return {(str(self.kind), self.name): new_id}

    def lookup(self, client: Client) -> Learned | None:
        wanted = name_key(self.name)
        if self.kind is Kind.ATTRIBUTE:
            objects: Iterable[Json] = client.variant_attributes()
        else:
            objects = (o for page in client.iter_pages(str(self.kind)) for o in page.items)
        for obj in objects:
            if not obj.get("deleted_at") and name_key(str(obj.get("name") or "")) == wanted:
                return {(str(self.kind), self.name): str(obj["id"])}
        return None


class NameUpdate(Step):
    def __init__(self, id: int, change: Change) -> None:
        super().__init__(id, f"update {change.kind} {change.key}", [change])
        self.change = change

    def prepare(self, ids: Ids) -> None:
        # Only the description is ever updated: names are identities, and sending ours would
        # re-spell a store's "ACME" as the catalog's "Acme".
        self.payload = {f.field: f.after for f in self.change.fields if f.field != "name"}

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        if self.change.kind is Kind.BRAND:
            client.update_brand(self.change.remote_id, self.payload)
        else:
            client.update_supplier(self.change.remote_id, self.payload)
        return {}


class CategoryBulk(CreateStep):
    """Every new category in one bulk call; parents come first and new ones refer to each
    other by `payload_id` (their label)."""

    def __init__(self, id: int, changes: list[Change], census: Census | None = None) -> None:
        labels = [c.key for c in changes]
        super().__init__(id, f"create {len(labels)} categories", changes)
        self.labels = sorted(labels, key=lambda label: (len(label_path(label)), label))
        self.intent = (str(Kind.CATEGORY), " | ".join(self.labels))
        self.census = census or Census()
        self.known: dict[tuple[str, ...], str] = {}

    def prepare(self, ids: Ids) -> None:
        self.known = dict(ids.categories)
        self.payload = self._entries(self.labels, self.known)

    def _entries(
        self, labels: Sequence[str], known: Mapping[tuple[str, ...], str]
    ) -> list[dict[str, Json]]:
        new = {path_key(label_path(label)): label for label in labels}
        entries: list[dict[str, Json]] = []
        for label in labels:
            path = label_path(label)
            entry: dict[str, Json] = {"name": path[-1], "payload_id": label}
            if len(path) > 1:
                parent = path_key(path[:-1])
                if parent in new:
                    entry["payload_parent_category_id"] = new[parent]
                elif parent in known:
                    entry["parent_category_id"] = known[parent]
                else:
                    raise Unresolved(f'category "{" / ".join(path[:-1])}" does not exist')
            entries.append(entry)
        return entries

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        # Looked up in the store just before they are created (another state file may have
        # made some); only the missing ones are sent, and a racing apply is settled after.
        objects, _ = self.census.objects(client, Kind.CATEGORY)
        live = normalize_categories(objects)
        present: Learned = {}
        for label in self.labels:
            found = live.get(path_key(label_path(label)))
            if found is not None:
                present[(str(Kind.CATEGORY), label)] = found.id
        missing = [label for label in self.labels if (str(Kind.CATEGORY), label) not in present]
        if not missing:
            return present
        if len(missing) < len(self.labels):
            known = {**self.known, **{k: c.id for k, c in live.items()}}
            self.payload = self._entries(missing, known)
            self.labels = missing
        self.lookup_first = False  # the census was the look-up
        learned = super().run(client, counter)
        try:
            settled = self._settle(client, counter, learned)
            # Categories carry no version, so which of two racing creates came first cannot
            # be read: a racing apply whose create lands just after our first look would
            # keep its own. A second look a moment later sees it, and both then agree.
            time.sleep(SETTLE_AGAIN_SECONDS)
            settled = self._settle(client, counter, learned)
        except CatalogError:  # ours exist for certain; only the race check failed
            return {**present, **learned}
        return {**present, **settled}

    def _settle(self, client: Client, counter: WriteCounter, learned: Learned) -> Learned:
        """After our bulk create, where a racing apply made the same paths: each label uses
        the category `normalize_categories` chooses (top down, oldest first); ours that are
        chosen but sit under a duplicate parent move under the chosen one; ours that are not
        chosen and hold nothing chosen beneath them are deleted (one bulk call each)."""
        listing = client.product_categories()
        chosen = normalize_categories(listing)
        by_id = {str(o.get("id")): o for o in listing}
        parent_of = {cid: category_parent(o) for cid, o in by_id.items()}
        ours = {made: label for (_, label), made in learned.items()}
        out: Learned = {}
        moves: list[dict[str, Json]] = []
        for made, label in ours.items():
            path = path_key(label_path(label))
            winner = chosen.get(path)
            out[(str(Kind.CATEGORY), label)] = winner.id if winner is not None else made
            up = chosen.get(path[:-1]) if len(path) > 1 else None
            under_a_duplicate = up is not None and parent_of.get(made) != up.id
            if winner is not None and winner.id == made and up is not None and under_a_duplicate:
                moves.append({"id": made, "parent_category_id": up.id})
                parent_of[made] = up.id
        if moves:
            counter.add()
            client.bulk_categories(moves)
        used = {c.id for c in chosen.values()}
        holding: set[str] = set()  # ancestors of a chosen category
        for cid in used:
            node = parent_of.get(cid)
            while node is not None and node not in holding:
                holding.add(node)
                node = parent_of.get(node)
        doomed = sorted(c for c in ours if c in by_id and c not in used and c not in holding)
        # Deleting a category deletes what is under it: only the topmost of ours go.
        tops = [c for c in doomed if parent_of.get(c) not in doomed]
        if tops:
            counter.add()
            client.delete_categories(tops)
        return out

    def send(self, client: Client) -> Learned:
        answer = client.bulk_categories(self.payload)
        learned: Learned = {}
        for entry in answer:
            label = entry.get("payload_id")
            if label in self.labels and entry.get("id"):
                learned[(str(Kind.CATEGORY), str(label))] = str(entry["id"])
        if len(learned) < len(self.labels):  # a store that does not echo payload ids
            return self.lookup(client) or learned
        return learned

    def lookup(self, client: Client) -> Learned | None:
        live = normalize_categories(client.product_categories())
        learned: Learned = {}
        for label in self.labels:
            found = live.get(path_key(label_path(label)))
            if found is not None:
                learned[(str(Kind.CATEGORY), label)] = found.id
        # The bulk call is one transaction: all there, or none.
        return learned if len(learned) == len(self.labels) else None


class ProductCreate(CreateStep):
    def __init__(self, id: int, change: Change, *, tax_exclusive: bool) -> None:
        super().__init__(id, f"create product {change.key}", [change])
        self.change = change
        self.tax_exclusive = tax_exclusive
        self.intent = (str(Kind.PRODUCT), change.key)
        self.variants = [c for c in change.children if c.kind is Kind.VARIANT]
        # Recorded as sent: a variant whose `active` differs from the family's one flag gets
        # it from its own PUT after the create (`_after_create`), recorded when that is done.
        flag = family_active(change)
        self.changes.extend(_as_created(v, flag) for v in self.variants)
        sku = {f.field: f.after for f in change.fields}.get("sku")
        self.skus = [v.key for v in self.variants] or ([sku] if sku else [])

    def prepare(self, ids: Ids) -> None:
        self.payload = create_payload(self.change, ids, tax_exclusive=self.tax_exclusive)

    def send(self, client: Client) -> Learned:
        created = client.create_product(self.payload)
        learned: Learned = {}
        if created:
            learned[(str(Kind.PRODUCT), self.change.key)] = created[0]
        # Ids come back parent first; the parent may itself be the first variant.
        rows = created[1:] if len(created) == len(self.variants) + 1 else created
        if len(rows) == len(self.variants):
            for variant, row_id in zip(self.variants, rows, strict=True):
                learned[(str(Kind.VARIANT), variant.key)] = row_id
        elif not self.variants and created:
            sku = self.skus[0] if self.skus else None
            if sku:
                learned[(str(Kind.VARIANT), sku)] = created[0]
        return learned

    def lookup(self, client: Client) -> Learned | None:
        if self.skus:
            rows = client.products_by_sku(self.skus[0])
        else:  # no SKU to ask for: read the products and find the handle
            rows = [o for page in client.iter_pages("product") for o in page.items]
        rows = [r for r in rows if not r.get("deleted_at")]
        if self.skus:
            return _owned_rows(rows, self.change.key, self.skus[0])
        ours = [r for r in rows if r.get("handle") == self.change.key]
        return {(str(Kind.PRODUCT), self.change.key): str(ours[0]["id"])} if ours else None


def _as_created(variant: Change, family_flag: bool) -> Change:
    """A new family's variant change as its create writes it: `active` is the family's flag."""
    fields = tuple(
        replace(f, after=family_flag)
        if f.field == "active" and f.after is not None and bool(f.after) != family_flag
        else f
        for f in variant.fields
    )
    return variant if fields == variant.fields else replace(variant, fields=fields)


def _owned_rows(rows: list[Json], handle: str, sku: str) -> Learned | None:
    """The learned ids if the rows holding `sku` belong to `handle`; None if none do.

    A row under another handle means the SKU is taken by a product this plan did not make:
    sending ours would fail or duplicate, so that is an error, not "already there".
    """
    for row in rows:
        if row.get("sku") != sku:
            continue
        if row.get("handle") != handle:
            raise ApiError(
                f'SKU "{sku}" already belongs to product "{row.get("handle")}" in the store; '
                "move or remove it there, then rerun."
            )
        parent = row.get("variant_parent_id") or row["id"]
        return {(str(Kind.PRODUCT), handle): str(parent), (str(Kind.VARIANT), sku): str(row["id"])}
    return None


class VariantAdd(CreateStep):
    """One new variant in an existing family (2.1 POST, the family named by its name)."""

    def __init__(
        self, id: int, change: Change, family_change: Change, *, tax_exclusive: bool
    ) -> None:
        super().__init__(id, f"add variant {change.key} to {family_change.key}", [change])
        self.change = change
        self.family_change = family_change
        self.tax_exclusive = tax_exclusive
        self.intent = (str(Kind.VARIANT), change.key)

    def prepare(self, ids: Ids) -> None:
        family = Family.of(self.family_change, ids.live)
        values = {f.field: f.after for f in self.change.fields}
        details = details_payload(
            values, self.change.key, family, ids, tax_exclusive=self.tax_exclusive
        )
        details["product_codes"] = _codes(self.change.key, values.get("barcode"))
        self.payload = {"common": {"name": family.name}, "details": details}

    def send(self, client: Client) -> Learned:
        answer = client.add_variant(common=self.payload["common"], details=self.payload["details"])
        new_id = answer.get("id") or answer.get("product_id") if isinstance(answer, dict) else None
        return {(str(Kind.VARIANT), self.change.key): str(new_id)} if new_id else {}

    def lookup(self, client: Client) -> Learned | None:
        rows = [r for r in client.products_by_sku(self.change.key) if not r.get("deleted_at")]
        return _owned_rows(rows, self.family_change.key, self.change.key)


class ProductPut(Step):
    """One 2.1 PUT: a row's own changes (`details`) and/or its family's (`common`)."""

    def __init__(
        self,
        id: int,
        label: str,
        changes: list[Change],
        *,
        target: Change,
        sku: str | None,
        details: Mapping[str, Json],
        common: Mapping[str, Json] | None,
        family_change: Change,
        tax_exclusive: bool,
    ) -> None:
        super().__init__(id, label, changes)
        self.target = target
        self.sku = sku
        self.details = dict(details)
        self.common = dict(common or {})
        self.family_change = family_change
        self.tax_exclusive = tax_exclusive
        self.remote_id: str | None = target.remote_id

    def prepare(self, ids: Ids) -> None:
        family = Family.of(self.family_change, ids.live)
        if self.remote_id is None:  # a row of a family created earlier in this apply
            self.remote_id = ids.rows.get(self.sku or "") or ids.products.get(self.target.key)
        if self.remote_id is None:
            raise Unresolved(f"{self.target.kind} {self.target.key} has no id in the store")
        self.payload = {
            "common": common_payload(self.common, family, ids),
            "details": details_payload(
                self.details, self.sku or "", family, ids, tax_exclusive=self.tax_exclusive
            ),
        }

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        assert self.remote_id is not None
        counter.add()
        client.update_product(
            self.remote_id, common=self.payload["common"], details=self.payload["details"]
        )
        return {}


class ProductDelete(Step):
    def __init__(self, id: int, change: Change, *, whole_family: bool) -> None:
        super().__init__(id, f"delete {change.kind} {change.key}", [change])
        self.change = change
        self.whole_family = whole_family

    def prepare(self, ids: Ids) -> None:
        self.payload = {"id": self.change.remote_id, "all": self.whole_family}

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        try:
            client.delete_product(self.change.remote_id, whole_family=self.whole_family)
        except ApiError as exc:
            if exc.status != 404:  # already gone (a retry after a lost answer): done
                raise
        return {}


class ImageUpload(Step):
    """One family image uploaded from the catalog directory, then followed until processed.

    Not an intent-guarded create: the store reuses an image when the same bytes are uploaded
    to the same product again (lightspeed-xseries.md §7), so an upload whose answer was lost is
    simply sent again (the client retries it), and the record is made from whatever id comes back.
    """

    def __init__(self, id: int, change: Change, handle: str, *, catalog_dir: Path | None) -> None:
        super().__init__(id, f"upload image {change.key} to {handle}", [change])
        self.change = change
        self.handle = handle
        self.catalog_dir = catalog_dir
        self.content = b""
        self.position = {f.field: f.after for f in change.fields}.get("position")

    def prepare(self, ids: Ids) -> None:
        product_id = ids.products.get(self.handle)
        if product_id is None:
            raise Unresolved(f"product {self.handle} does not exist in the store")
        if self.catalog_dir is None:
            raise CatalogError(f"image {self.change.key}: no catalog directory to read it from")
        path = self.catalog_dir / self.change.key
        try:
            self.content = path.read_bytes()
        except OSError as exc:
            raise CatalogError(
                f"image {path} cannot be read ({exc.strerror}); restore it or plan again"
            ) from None
        kind = image_type(self.content[:12])
        if kind is None:
            raise CatalogError(f"image {path} is not a jpg, png, gif, tiff or webp file")
        self.payload = {
            "product_id": product_id,
            "path": self.change.key,
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "media_type": f"image/{kind}",
        }

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        counter.add()
        data = client.upload_image(
            self.payload["product_id"],
            filename=PurePosixPath(self.change.key).name,
            content=self.content,
            media_type=self.payload["media_type"],
        )
        image_id = str(data["id"])
        wait_processed(client, image_id, data, label=self.change.key)
        return {(str(Kind.IMAGE), self.change.key): image_id}

    def before_send(self, ledger: Ledger) -> None:
        # Should the answer be lost, the family still has a record: its images in the store
        # are then not taken for a lost state file's, and this file is uploaded again (the
        # store reuses the same bytes on the same product, so no duplicate).
        ledger.note_image_sent(
            handle=self.handle,
            path=self.change.key,
            sha256=self.payload["sha256"],
            product_id=self.payload["product_id"],
            position=self.position,
        )

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        ledger.record_image(
            handle=self.handle,
            path=self.change.key,
            sha256=self.payload["sha256"],
            image_id=learned[(str(Kind.IMAGE), self.change.key)],
            product_id=self.payload["product_id"],
            position=self.position,
        )


IMAGE_WAIT_SECONDS = 120.0


def wait_processed(
    client: Client,
    image_id: str,
    data: Json,
    *,
    label: str,
    timeout: float = IMAGE_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Follow an upload until the store says `uploaded` (or raise on `error`), with backoff."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while str((data or {}).get("status") or "uploaded") == "processing":
        if time.monotonic() > deadline:
            raise ApiError(
                f"image {label} was still processing after {timeout:.0f} s; rerun apply later"
            )
        sleep(pause)
        pause = min(pause * 2, 5.0)
        data = client.get_image(image_id)
    if str((data or {}).get("status")) == "error":
        message = (data or {}).get("message") or (data or {}).get("error") or "no reason given"
        raise ApiError(f"the store could not process image {label}: {message}")


class ImageMove(Step):
    def __init__(self, id: int, change: Change, handle: str) -> None:
        super().__init__(id, f"move image {change.key} of {handle}", [change])
        self.change = change
        self.position = int({f.field: f.after for f in change.fields}["position"])

    def prepare(self, ids: Ids) -> None:
        self.payload = {"id": self.change.remote_id, "position": self.position}

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        client.set_image_position(self.change.remote_id, self.position)
        return {}

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        assert self.change.remote_id is not None
        ledger.set_image_position(self.change.remote_id, self.position)


class ImageDelete(Step):
    def __init__(self, id: int, change: Change, handle: str) -> None:
        super().__init__(id, f"delete {change.key} of {handle}", [change])
        self.change = change

    def prepare(self, ids: Ids) -> None:
        self.payload = {"id": self.change.remote_id}

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        assert self.change.remote_id is not None
        counter.add()
        try:
            client.delete_image(self.change.remote_id)
        except ApiError as exc:
            if exc.status != 404:  # already gone: done
                raise
        return {}

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        assert self.change.remote_id is not None
        ledger.forget_image(self.change.remote_id)


# -- building the steps from a plan ------------------------------------------------------------


class _Builder:
    def __init__(
        self,
        plan: Plan,
        live: Live,
        managed: Mapping[str, Mapping[str, object]],
        catalog_dir: Path | None,
    ) -> None:
        self.plan = plan
        self.catalog_dir = catalog_dir
        self.live = live
        self.managed = managed
        self.steps: list[Step] = []
        self.providers: dict[tuple[str, str], int] = {}  # (kind, name key) -> creating step
        self.adopted: list[Change] = []
        self.refused: list[tuple[Change, str]] = []
        self.groups: list[Change] = []  # changes whose outcome is their children's
        self.census = Census()  # one read per named kind, shared by this apply's creates

    def _add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def _next(self) -> int:
        return len(self.steps)

    def build(self) -> list[Step]:
        categories = [c for c in self.plan.changes if c.kind is Kind.CATEGORY]
        for change in self.plan.changes:
            if change.kind in _NAME_KINDS:
                self._name(change)
        new_categories = [c for c in categories if c.action is Action.CREATE]
        if new_categories:
            bulk = self._add(CategoryBulk(self._next(), new_categories, self.census))
            for c in new_categories:
                self.providers[(str(Kind.CATEGORY), _label_key(c.key))] = bulk.id
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
            wanted.append((str(Kind.CATEGORY), _label_key(values["category"])))
        return {self.providers[w] for w in wanted if w in self.providers}

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

    def _images(self, change: Change, create: Step | None) -> None:
        """Deletes and moves first, then uploads one after another in catalog order: the
        store appends each upload, so that order is the family's image order."""
        images = [c for c in change.children if c.kind is Kind.IMAGE]
        before: set[int] = {create.id} if create is not None else set()
        for c in images:
            if c.action is Action.ADOPT:  # the store's image recorded as this file: no request
                self.adopted.append(c)
            elif c.action is Action.DELETE:
                self._add(ImageDelete(self._next(), c, change.key))
            elif c.action is Action.UPDATE:
                before.add(self._add(ImageMove(self._next(), c, change.key)).id)
        uploads = [c for c in images if c.action is Action.CREATE]
        uploads.sort(key=lambda c: {f.field: f.after for f in c.fields}.get("position") or 0)
        for c in uploads:
            step = self._add(ImageUpload(self._next(), c, change.key, catalog_dir=self.catalog_dir))
            step.deps = set(before)
            before = {step.id}

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
                requests=1,
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

    def _is_managed(self, kind: Kind, key: str) -> bool:
        return key in self.managed.get(str(kind), {})

    def _retire_product(self, change: Change) -> None:
        # Prune touches only what this catalog manages (design invariant 3), whatever the plan.
        if not self._is_managed(Kind.PRODUCT, change.key):
            self.refused.append((change, f"product {change.key} is not managed by this catalog"))
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
        if not (
            self._is_managed(Kind.VARIANT, change.key)
            or self._is_managed(Kind.PRODUCT, family_change.key)
        ):
            self.refused.append((change, f"variant {change.key} is not managed by this catalog"))
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


def _label_key(label: str) -> str:
    return " / ".join(path_key(label_path(label)))


def build_steps(
    plan: Plan,
    live: Live,
    managed: Mapping[str, Mapping[str, object]],
    *,
    catalog_dir: Path | None = None,
) -> tuple[list[Step], list[Change], list[tuple[Change, str]], list[Change]]:
    """The plan as steps, plus the adoptions (no request), refusals and grouped changes."""
    builder = _Builder(plan, live, managed, catalog_dir)
    steps = builder.build()
    return steps, builder.adopted, builder.refused, builder.groups


# -- running them -------------------------------------------------------------------------------


@dataclass
class _Done:
    learned: Learned | None = None
    error: str | None = None
    unknown: bool = False  # a create whose outcome is still unknown (intent stays pending)


def _execute(step: Step, client: Client, counter: WriteCounter) -> _Done:
    try:
        return _Done(learned=step.run(client, counter))
    except (TransportError, Unconfirmed) as exc:
        return _Done(error=str(exc), unknown=step.intent is not None)
    except CatalogError as exc:
        return _Done(error=str(exc))
    except Exception as exc:  # a bug must fail its step, not hang the apply
        return _Done(error=f"unexpected {type(exc).__name__}: {exc}")


class _Recorder:
    """Turns step results into ledger rows, managed values and events (caller's thread)."""

    def __init__(
        self,
        ledger: Ledger,
        run_id: int,
        live: Live,
        emit: Callable[[ApplyEvent], None],
        redact: Callable[[str], str] = redact,
    ) -> None:
        self.redact = redact
        self.ledger = ledger
        self.run_id = run_id
        self.live = live
        self.emit = emit
        self.outcomes: dict[int, ChangeOutcome] = {}  # id(change) -> outcome
        self.order: list[Change] = []
        self.rows: dict[int, int] = {}  # id(change) -> ledger change row id

    def record(
        self,
        change: Change,
        outcome: str,
        *,
        remote_id: str | None = None,
        error: str | None = None,
    ) -> None:
        if id(change) in self.outcomes:
            return
        # Errors quote the store, which may quote the token back: never stored nor shown.
        error = self.redact(error) if error is not None else None
        fields = change.fields if change.action is not Action.ADOPT else ()
        row = self.ledger.record_change(
            self.run_id,
            kind=str(change.kind),
            key=change.key,
            action=str(change.action),
            fields=[f.to_json() for f in fields],
            remote_id=remote_id or change.remote_id,
            outcome=outcome,
            error=error,
        )
        self.rows[id(change)] = row
        if outcome == "applied":
            self._managed(change, remote_id or change.remote_id)
        result = ChangeOutcome(
            kind=str(change.kind),
            key=change.key,
            action=str(change.action),
            outcome=outcome,
            fields=fields,
            remote_id=remote_id or change.remote_id,
            error=error,
        )
        self.outcomes[id(change)] = result
        self.order.append(change)
        self.emit(ApplyEvent("change", change=result))

    def adopt(self, changes: Iterable[Change]) -> None:
        """Adoptions (no request made): recorded like `record(change, "applied")`, but in
        batches of one transaction each, so adopting a large store costs a few statements
        and the lock's renewal thread never waits long for the file."""
        fresh: dict[int, Change] = {}
        for change in changes:
            if id(change) not in self.outcomes:
                fresh.setdefault(id(change), change)
        todo = list(fresh.values())
        for start in range(0, len(todo), ADOPT_BATCH):
            batch = todo[start : start + ADOPT_BATCH]
            rows = self.ledger.record_adoptions(
                self.run_id,
                [
                    Adoption(
                        kind=str(c.kind),
                        key=c.key,
                        remote_id=c.remote_id,
                        applied=self._applied(c),
                        manage=c.kind is not Kind.IMAGE,  # images: by content (`on_applied`)
                    )
                    for c in batch
                ],
            )
            for change, row in zip(batch, rows, strict=True):
                self.rows[id(change)] = row
                result = ChangeOutcome(
                    kind=str(change.kind),
                    key=change.key,
                    action=str(change.action),
                    outcome="applied",
                    remote_id=change.remote_id,
                )
                self.outcomes[id(change)] = result
                self.order.append(change)
                self.emit(ApplyEvent("change", change=result))

    def _applied(self, change: Change) -> dict[str, Json]:
        """The values a change leaves applied, as the managed table keeps them."""
        applied: dict[str, Json] = {f.field: f.after for f in change.fields}
        if change.kind is Kind.PRODUCT and "sku" not in applied:
            found = self.live.products.get(change.key)
            if found is not None and not found.is_family and found.product.sku:
                # `catalog history SKU` finds a simple product through its recorded SKU.
                applied["sku"] = found.product.sku
        return applied

    def _managed(self, change: Change, remote_id: str | None) -> None:
        if change.kind is Kind.IMAGE:  # images are remembered by content (`on_applied`)
            return
        kind, key = str(change.kind), change.key
        if change.action is Action.DELETE:
            self.ledger.forget_managed(kind, key)
            if change.kind is Kind.PRODUCT:
                found = self.live.products.get(key)
                for sku in found.rows if found else ():
                    self.ledger.forget_managed(str(Kind.VARIANT), sku)
            return
        self.ledger.record_managed(
            kind,
            key,
            remote_id=remote_id,
            applied=self._applied(change),
            run_id=self.run_id,
            replace=change.action in (Action.CREATE, Action.ADOPT),
        )


def _record_adopted_image(
    ledger: Ledger, change: Change, family: Change | None, live: Live
) -> None:
    """An image adopted from the store (`--adopt-images`): recorded as the upload of its
    catalog file, so later plans judge it by content like any image apply uploaded."""
    values = {f.field: f.after for f in change.fields}
    found = live.products.get(family.key) if family is not None else None
    if family is None or change.remote_id is None or not values.get("sha256"):
        return
    product_id = family.remote_id or (found.remote_id if found is not None else None)
    if product_id is None:
        return
    position = values.get("position")
    ledger.record_image(
        handle=family.key,
        path=change.key,
        sha256=str(values["sha256"]),
        image_id=change.remote_id,
        product_id=str(product_id),
        position=int(position) if isinstance(position, int) else None,
    )


def apply_plan(
    plan: Plan,
    client: Client,
    state: State,
    *,
    live: Live,
    on_event: Callable[[ApplyEvent], None] | None = None,
    parallelism: int | None = None,
    lock: ApplyLock | None = None,
    refresh_live: Callable[[], Live] | None = None,
    catalog_dir: Path | None = None,
    plan_digest: str | None = None,
    actor: str | None = None,
    host: str | None = None,
) -> ApplyResult:
    """Carry out `plan` against the store `client` talks to; record everything in `state`.

    `live` is the store as just refreshed (ids of names and rows the payloads reference).
    The caller holds `lock` (the apply lock); if it is lost mid-run, no further step starts.
    `refresh_live`, if given, re-reads the store after the last step, so the ledger records
    the versions the store gave each applied object and the next plan starts warm; a plan
    with nothing to send (an adoption) records the versions `live` holds instead.
    `catalog_dir` is where image paths are read from. `plan_digest` is the digest the run is
    recorded under when `plan` is what is left of a saved plan (`remaining`): the saved one's.
    Returns the outcome per change; `outcome` is `partial` when any change failed or was
    skipped (the caller exits 1), and a rerun then does only what is left.
    """
    emit = on_event or (lambda _event: None)
    started = time.monotonic()
    stats_before = client.stats()
    ledger = Ledger(state)
    managed = {
        str(kind): ledger.managed(str(kind)) for kind in (Kind.PRODUCT, Kind.VARIANT, Kind.IMAGE)
    }
    steps, adopted, refused, groups = build_steps(plan, live, managed, catalog_dir=catalog_dir)
    step_requests = sum(s.requests for s in steps)
    planned = plan.estimate.requests
    run_id = ledger.start_run(
        store=plan.store,
        plan_digest=plan_digest or plan.digest(),
        catalog_digest=plan.catalog_digest,
        git_commit=plan.git_commit,
        actor=actor,
        host=host,
    )
    recorder = _Recorder(ledger, run_id, live, emit, client.redact)
    counter = WriteCounter()
    outcome = "failed"
    try:
        emit(ApplyEvent("start", planned=step_requests))
        if step_requests != planned:
            emit(
                ApplyEvent(
                    "notice",
                    message=f"The plan estimated {planned} requests; its changes need "
                    f"{step_requests} under the API's rules.",
                )
            )
        parents = {
            id(child): top for top in plan.changes for child in top.children
        }  # an adopted image's family
        recorder.adopt(adopted)
        for change in adopted:
            if change.kind is Kind.IMAGE:
                _record_adopted_image(ledger, change, parents.get(id(change)), live)
        for change, reason in refused:
            recorder.record(change, "failed", error=f"refused: {reason}")
        _mark_lookups(steps, ledger)
        paced = client.pace_by_remaining
        # The client meters every request against the store's window; spacing requests out
        # near its end as well would only stretch every later window to the sustained rate.
        client.pace_by_remaining = paced and client.stats().rate_limit is None
        try:
            _run_steps(
                steps,
                client,
                recorder,
                ledger,
                Ids(live),
                counter=counter,
                parallelism=parallelism or default_parallelism(plan.estimate),
                lock=lock,
                planned=step_requests,
            )
        finally:
            client.pace_by_remaining = paced
        for group in groups:
            kids = [recorder.outcomes.get(id(c)) for c in group.children]
            ok = all(k is not None and k.outcome == "applied" for k in kids)
            recorder.record(
                group,
                "applied" if ok else "failed",
                error=None if ok else "some of its variants were not changed",
            )
        _close_stale_intents(ledger, steps)
        if not steps:
            # Nothing was sent (an adoption, say): the store is as `live` read it just now,
            # so reading it back (60,000 rows for a large store) would learn nothing new.
            _record_versions(live, recorder, ledger)
        elif refresh_live is not None:
            try:
                _record_versions(refresh_live(), recorder, ledger)
            except CatalogError as exc:
                # The writes are done and recorded; only the versions they got are missing.
                emit(ApplyEvent("notice", message=f"Could not read the store back: {exc}"))
        changes = tuple(recorder.outcomes[id(c)] for c in recorder.order)
        outcome = "applied" if all(c.outcome == "applied" for c in changes) else "partial"
    finally:
        stats = client.stats()
        result = ApplyResult(
            run_id=run_id,
            outcome=outcome,
            changes=tuple(recorder.outcomes[id(c)] for c in recorder.order),
            planned_requests=planned,
            step_requests=step_requests,
            requests=stats.requests - stats_before.requests,
            writes=counter.value,
            rate_limited=stats.rate_limited - stats_before.rate_limited,
            seconds=time.monotonic() - started,
        )
        counts: dict[str, Json] = dict(result.counts())
        counts.update(
            planned_requests=planned,
            writes=result.writes,
            requests=result.requests,
            rate_limited=result.rate_limited,
        )
        ledger.finish_run(run_id, outcome=outcome, counts=counts)
    emit(ApplyEvent("finish", done=counter.value, planned=step_requests, message=outcome))
    return result


def _mark_lookups(steps: Sequence[Step], ledger: Ledger) -> None:
    """Creates a crashed run left unfinished are looked up before they are sent again."""
    pending = {(i.kind, i.key) for i in ledger.pending_intents()}
    for step in steps:
        if step.intent is not None and step.intent in pending:
            step.lookup_first = True


def _close_stale_intents(ledger: Ledger, steps: Sequence[Step]) -> None:
    """Pending intents this plan no longer creates: the refresh it was made from saw the
    store's truth (the object exists and is updated or adopted instead), so close them."""
    creating = {s.intent for s in steps if s.intent is not None}
    for intent in ledger.pending_intents():
        if (intent.kind, intent.key) not in creating:
            ledger.resolve_intents(intent.kind, intent.key, outcome="superseded", remote_id=None)


def _run_steps(
    steps: list[Step],
    client: Client,
    recorder: _Recorder,
    ledger: Ledger,
    ids: Ids,
    *,
    counter: WriteCounter,
    parallelism: int,
    lock: ApplyLock | None,
    planned: int,
) -> None:
    by_id = {s.id: s for s in steps}
    waiting = {s.id: len(s.deps) for s in steps}
    dependants: dict[int, list[int]] = {s.id: [] for s in steps}
    for s in steps:
        for d in s.deps:
            dependants[d].append(s.id)
    ready = [s.id for s in steps if not s.deps]
    heapq.heapify(ready)  # plan order among the ready ones
    running: dict[Future[_Done], tuple[Step, int | None]] = {}
    done_requests = 0

    def progress() -> None:
        stats = client.stats()
        recorder.emit(
            ApplyEvent(
                "progress",
                done=done_requests,
                planned=planned,
                rate_limited=stats.rate_limited,
                waited_seconds=stats.waited_seconds,
            )
        )

    def skip(step_id: int, reason: str) -> None:
        # Dependants of a failed step are skipped, transitively, with the reason.
        stack = list(dependants[step_id])
        while stack:
            sid = stack.pop()
            if sid not in waiting:
                continue
            del waiting[sid]
            for change in by_id[sid].changes:
                recorder.record(change, "skipped", error=reason)
            stack.extend(dependants[sid])

    def finish(step: Step, result: _Done, intent_id: int | None) -> None:
        nonlocal done_requests
        done_requests += step.requests
        # The intent's outcome and the change rows commit together: a kill between them
        # would leave an object that no record calls ours (neither pending nor applied).
        with ledger.transaction():
            if result.error is None:
                learned = result.learned or {}
                ids.learn(learned)
                if intent_id is not None:
                    ledger.finish_intent(intent_id, outcome="done", remote_id=_first(learned))
                if step.intent is not None:
                    # Earlier runs' intents for the same object are answered too.
                    kind, key = step.intent
                    ledger.resolve_intents(kind, key, outcome="done", remote_id=_first(learned))
                step.on_applied(ledger, learned)
                for change in step.changes:
                    recorder.record(
                        change, "applied", remote_id=learned.get((str(change.kind), change.key))
                    )
                for sid in dependants[step.id]:
                    if sid in waiting:
                        waiting[sid] -= 1
                        if waiting[sid] == 0:
                            heapq.heappush(ready, sid)
            else:
                if intent_id is not None and not result.unknown:
                    ledger.finish_intent(intent_id, outcome="failed")
                for change in step.changes:
                    recorder.record(change, "failed", error=result.error)
                skip(step.id, f"skipped: it needs {step.label}, which failed")
        progress()

    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply") as pool:
        try:
            while ready or running:
                if lock is not None and lock.lost and stopped is None:
                    stopped = "the apply lock was lost (another apply took it over)"
                pause = 0.0
                while ready and len(running) < parallelism and stopped is None:
                    # Start a step only when the store's window has room for its request
                    # (the client counts every request: refresh, look-ups, writes).
                    pause = client.rate_delay()
                    if pause > 0:
                        break
                    step = by_id[heapq.heappop(ready)]
                    del waiting[step.id]
                    try:
                        step.prepare(ids)
                    except CatalogError as exc:
                        finish(step, _Done(error=str(exc)), None)
                        continue
                    step.before_send(ledger)
                    intent_id = None
                    if step.intent is not None:
                        kind, key = step.intent
                        intent_id = ledger.begin_intent(
                            run_id=recorder.run_id, kind=kind, key=key, payload_digest=step.digest()
                        )
                    running[pool.submit(_execute, step, client, counter)] = (step, intent_id)
                if not running:
                    if pause > 0 and ready:
                        time.sleep(pause)
                        continue
                    break
                # Wake for a finished write, or when the window lets the next one start.
                finished, _ = wait(
                    running, timeout=pause if pause > 0 else None, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    step, intent_id = running.pop(future)
                    finish(step, future.result(), intent_id)
        except BaseException:
            # Ctrl-C or a crash of this thread: let in-flight requests end and record them,
            # so the ledger says what was sent; pending intents cover the rest.
            stopped = stopped or "interrupted"
            for future in list(running):
                step, intent_id = running.pop(future)
                finish(step, future.result(), intent_id)
            raise
        finally:
            leftover = sorted(waiting)
            for sid in leftover:
                for change in by_id[sid].changes:
                    recorder.record(change, "skipped", error=f"skipped: {stopped or 'not run'}")


def _first(learned: Learned) -> str | None:
    return next(iter(learned.values()), None)


def _record_versions(live: Live, recorder: _Recorder, ledger: Ledger) -> None:
    """After a refresh: the version (and id) the store gave each applied object."""
    found_rows: list[tuple[int, str | None, int | None]] = []
    for change in recorder.order:
        outcome = recorder.outcomes[id(change)]
        if outcome.outcome != "applied" or change.action is Action.DELETE:
            continue
        found = live_object(live, change.kind, change.key)
        if found is None:
            continue
        remote_id, version = found
        found_rows.append((recorder.rows[id(change)], remote_id, version))
        recorder.outcomes[id(change)] = ChangeOutcome(
            **{**outcome.__dict__, "remote_id": remote_id, "remote_version": version}
        )
        if remote_id and remote_id != outcome.remote_id:
            ledger.record_managed(
                str(change.kind), change.key, remote_id=remote_id, applied={}, run_id=None
            )
    # One transaction for them all: a 10,000-family adoption reads back 60,000 rows.
    ledger.set_change_remotes(found_rows)


def live_object(live: Live, kind: Kind, key: str) -> tuple[str, int | None] | None:
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
    """The part of `plan` that earlier runs of it have not applied yet."""

    def left(change: Change) -> Change | None:
        children = tuple(c for c in (left(k) for k in change.children) if c is not None)
        if (str(change.kind), change.key) not in done:
            return replace(change, children=children)
        if not is_done(change, done):
            # Applied in part (made, but a field still to set): an update of what is left.
            fields = _left_over(change, done)
            return replace(
                change, action=Action.UPDATE, fields=fields, children=children, requests=1
            )
        if not children:
            return None
        # Applied itself, but not all of its children: keep it as their parent, writing
        # nothing of its own (a created product's images are then uploaded to it).
        return replace(change, action=Action.UPDATE, fields=(), children=children, requests=0)

    changes = tuple(c for c in (left(c) for c in plan.changes) if c is not None)
    requests = sum(c.requests for top in changes for c in top.walk())
    return replace(plan, changes=changes, estimate=replace(plan.estimate, requests=requests))


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


__all__ = [
    "ApplyEvent",
    "ApplyResult",
    "ChangeOutcome",
    "apply_plan",
    "build_steps",
    "default_parallelism",
    "is_done",
    "remaining",
    "stale_reasons",
]
