"""X-Series' steps: one write request each, and how it is sent (`run`), prepared from the
compile's `Ids` (`prepare`), recorded (`before_send`, `on_applied`) and, for a create, looked up
instead of sent again after a lost answer (design invariant 6; `CreateStep`)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from reconciler.errors import (
    ApiError,
    CatalogError,
    Unresolved,
)
from reconciler.live import label_path, path_key
from reconciler.model import Json, name_key
from reconciler.plan import Change, Kind
from reconciler.providers import steps
from reconciler.providers.base import Learned, WriteCounter
from reconciler.providers.steps import read_image
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.normalize import (
    category_parent,
    normalize_categories,
    oldest_first,
)
from reconciler.providers.xseries.payloads import (
    Family,
    Ids,
    _codes,
    common_payload,
    create_payload,
    details_payload,
    family_active,
)
from reconciler.state.ledger import Ledger

_NAME_KINDS = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG, Kind.ATTRIBUTE)

# One write request each, prepared from the compile's `Ids` (`providers.steps`).
Step = steps.Step[Ids, Client]


class CreateStep(steps.CreateStep[Ids, Client]):
    """A create: intent first; an unknown outcome is looked up, never blindly re-sent, and a
    422 naming the object the store already holds is looked up too (`existing_ids`)."""

    def already_there(self, exc: ApiError) -> bool:
        return bool(existing_ids(exc))


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
    create of that kind is sent; and what this apply then created of each kind.

    Two applies from two state files never see each other's cache, so a name is looked up in
    the store itself before it is created. Because they may still look at the same moment,
    the brands, suppliers and tags this apply created are followed by one read per kind of
    what changed since the census (`NameSettle`, once all of that kind's creates ended): when
    an older object of the same name turns up, ours is deleted again and the older one used
    (`oldest_first`), so racing applies settle on one object. (Variant attributes need no such
    read: the store refuses a second one with a 422 naming it.)
    """

    def __init__(self) -> None:
        self._locks = {k: threading.Lock() for k in (*_NAME_KINDS, Kind.CATEGORY)}
        self._read: dict[Kind, tuple[list[Json], int | None]] = {}
        self._created: dict[Kind, dict[str, str]] = {k: {} for k in _FEED_NAME_KINDS}

    def objects(self, client: Client, kind: Kind) -> tuple[list[Json], int | None]:
        """The live objects of `kind` and the highest version among them (None without a
        change feed). Threads asking together wait for the one read."""
        with self._locks[kind]:
            if kind not in self._read:
                self._read[kind] = _read_kind(client, kind)
            return self._read[kind]

    def created(self, kind: Kind, name: str, remote_id: str) -> None:
        """A create of `kind` this apply sent made (or, after a lost answer, found) `name`."""
        with self._locks[kind]:
            self._created[kind][name] = remote_id

    def settling(self, kind: Kind) -> tuple[dict[str, str], int | None]:
        """Name -> id of what this apply created of `kind`, and the census's highest version
        (what changed after it is what a racing apply may have made)."""
        with self._locks[kind]:
            created = dict(self._created[kind])
            read = self._read.get(kind)
        return created, (read[1] if read is not None else None)


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
        objects, _ = self.census.objects(client, self.kind)
        found = _oldest_named(objects, self.name)
        if found is not None:
            return {(str(self.kind), self.name): str(found["id"])}
        self.lookup_first = False  # the census was the look-up
        learned = super().run(client, counter)
        ours = learned.get((str(self.kind), self.name))
        if self.kind in _FEED_NAME_KINDS and ours is not None:
            self.census.created(self.kind, self.name, ours)  # for the kind's `NameSettle`
        return learned

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


class NameSettle(Step):
    """After this apply's creates of one kind (brand, supplier or tag) have all ended, one read
    of what changed since the census: for each name we created, if an older object of that
    name appeared (a racing apply made it), ours goes and the older one is used. One read for
    the kind, not one per object: each of ours was made before it, so of two racing creates
    the later one's read sees the earlier one (`Census`).

    Sends no write when all goes well (its cost is 0); a delete per duplicate of ours when a
    race happened. Payloads referencing the kind's new names wait for it.
    """

    def __init__(self, id: int, kind: Kind, creates: Sequence[NameCreate], census: Census) -> None:
        super().__init__(id, f"check the new {kind}s against a racing apply", [])
        self.kind = kind
        self.deps = {c.id for c in creates}
        self.deps_may_fail = True  # settles whichever of them were made
        self.requests = 0
        self.payer = creates[0].changes[0]
        self.names = [c.name for c in creates]
        self.census = census

    def prepare(self, ids: Ids) -> None:
        self.payload = {"kind": str(self.kind), "names": self.names}

    def run(self, client: Client, counter: WriteCounter) -> Learned:
        ours, since = self.census.settling(self.kind)
        if not ours:
            return {}
        try:
            pages = client.iter_pages(str(self.kind), after=since, known_page_cap=_SURE_PAGE)
            newer = [o for page in pages for o in page.items]
        except CatalogError:
            # Ours exist for certain; only the race check failed. They are used, and a later
            # plan names any duplicate (a notice) while using the oldest.
            return {}
        settled: Learned = {}
        for name, our_id in ours.items():
            oldest = _oldest_named(newer, name)
            if oldest is None or str(oldest["id"]) == our_id:
                continue
            try:
                counter.add()
                client.delete_named(str(self.kind), our_id)
            except CatalogError as exc:
                if not (isinstance(exc, ApiError) and exc.status == 404):
                    continue  # ours stays, and is used (a later plan names the duplicate)
            settled[(str(self.kind), name)] = str(oldest["id"])
        return settled

    def on_applied(self, ledger: Ledger, learned: Learned) -> None:
        # The creates recorded ours; the name is now managed as the older object.
        for (kind, name), remote_id in learned.items():
            ledger.record_managed(kind, name, remote_id=remote_id, applied={})


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
        self.content, kind = read_image(self.catalog_dir, self.change.key)
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
