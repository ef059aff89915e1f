"""Planning: the catalog and the live store in, the `Plan` value out (`reconciler.plan`).

Pure: the catalog and the live store arrive as values (`Live`, normalized by the provider), and
what this tool last applied arrives as `managed` (kind -> key -> object with `remote_id` and
`applied`, e.g. `reconciler.state.ledger.Managed`). The planner never sees a provider.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from reconciler import ownership
from reconciler.diff import diff_fields
from reconciler.errors import UsageError
from reconciler.limits import DEFAULT as DEFAULT_LIMITS
from reconciler.limits import Limits
from reconciler.live import (
    FAMILY_FIELDS,
    ROW_FIELDS,
    Live,
    LiveProduct,
    Named,
    family_values,
    path_key,
    row_values,
)
from reconciler.model import (
    Catalog,
    Image,
    Json,
    Product,
    Prune,
    Rule,
    Variant,
    name_key,
    product_digest,
    sorted_names,
)
from reconciler.plan import Action, Change, Estimate, FieldChange, Kind, Plan
from reconciler.rules import quote


class ManagedLike(Protocol):
    @property
    def remote_id(self) -> str | None: ...

    @property
    def applied(self) -> Mapping[str, Json]: ...


ManagedIndex = Mapping[str, Mapping[str, ManagedLike]]

# X-Series' published limit for a one-register store (300 per register + 50 per 5 minutes)
# and its window, used when the store has not said (the X-Series client meters by them too).
DEFAULT_RATE_LIMIT = 350
DEFAULT_WINDOW_SECONDS = 300.0

_NAME_KINDS = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG, Kind.ATTRIBUTE, Kind.CATEGORY)


@dataclass
class FamilyMemo:
    """What planning remembers per family between plans (issue 15): the family's result (its
    change, the notices it gave, whether its store images are unknown) under a key made of
    everything that result depends on: `scope` (what is the same for every family: settings,
    options, the store's tax mode and names, the planner's and the provider's code, ...; made by
    `reconciler.api`), the family's declared content, the live versions of its rows and images,
    what the ledger holds for its handle and SKUs, and the images uploaded for it.

    `known`: the keys and entries as last stored (`KnownEntries`). A family whose key is
    unchanged is replayed from its entry (read only then); the others are computed, and land
    in `fresh` to be stored. A family whose
    result read other families (a create checks SKUs and names held elsewhere, a category
    whether another product sits below it) is never remembered: it is computed every time.
    An entry that does not read back is simply computed again: a memo is never trusted over
    the planner.
    """

    scope: str
    known: KnownEntries = field(default_factory=lambda: KnownEntries({}))
    fresh: dict[str, tuple[str, str]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    computed: int = 0
    # Product digests already worked out (`model.product_digest`), by handle.
    digests: Mapping[str, str] = field(default_factory=dict)
    # Set by the planner, for an incremental plan's basis: the names' part, and how many
    # managed families were found no longer declared.
    names: NamesPart | None = None
    gone: int = 0


class KnownEntries:
    """The family memo as stored: handle -> key, and each family's entry, held (`entries`) or
    read only when its key matched (`load`: None when it does not read back as stored). A
    10,000-family adoption's entries are large and, once the ledger has changed, never
    replayed: holding them all would only cost memory."""

    def __init__(
        self,
        keys: Mapping[str, str],
        entries: Mapping[str, str] | None = None,
        load: Callable[[str], str | None] | None = None,
    ) -> None:
        self._keys = keys
        self._entries = entries if entries is not None else {}
        self._load = load

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, handle: object) -> bool:
        return handle in self._keys

    def key(self, handle: str) -> str | None:
        return self._keys.get(handle)

    def entry(self, handle: str) -> str | None:
        held = self._entries.get(handle)
        if held is not None or self._load is None or handle not in self._keys:
            return held
        return self._load(handle)

    def deferred(self) -> set[str]:
        """The handles whose entry is not held (read when asked for)."""
        return {h for h in self._keys if h not in self._entries}


@dataclass(frozen=True)
class FamilyResult:
    """One declared family's part of a plan: its change (None when unchanged or left out), the
    notices it gave, whether its store images are unknown to this state (0 or 1), and whether
    it is unchanged (counted in `Plan.unchanged`)."""

    change: Change | None = None
    notices: tuple[str, ...] = ()
    unknown_images: int = 0
    unchanged: bool = False

    def to_entry(self) -> str:
        """The result as the memo stores it (compact JSON)."""
        data: dict[str, Json] = {"n": list(self.notices), "u": self.unknown_images}
        if self.unchanged:
            data["c"] = "noop"
        elif self.change is not None:
            data["c"] = self.change.to_json()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def from_entry(text: str) -> FamilyResult | None:
        """The result an entry holds; None when it does not read back as one."""
        if text == NOOP_ENTRY:  # most families: nothing to parse
            return UNCHANGED
        try:
            data = json.loads(text)
            notices = tuple(str(n) for n in data["n"])
            unknown = int(data["u"])
            raw = data.get("c")
            if raw == "noop":
                return FamilyResult(None, notices, unknown, unchanged=True)
            change = None if raw is None else Change.from_json(raw)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return FamilyResult(change, notices, unknown)


UNCHANGED = FamilyResult(unchanged=True)
NOOP_ENTRY = UNCHANGED.to_entry()


@dataclass(frozen=True)
class NamesPart:
    """The plan's named objects (brands, suppliers, tags, attributes, categories): the changes
    it keeps, how many are unchanged, and the notices they gave (names the store holds twice)."""

    changes: tuple[Change, ...] = ()
    unchanged: int = 0
    notices: tuple[str, ...] = ()

    def to_json(self) -> Json:
        return {
            "changes": [c.to_json() for c in self.changes],
            "unchanged": self.unchanged,
            "notices": list(self.notices),
        }

    @staticmethod
    def from_json(data: Json) -> NamesPart:
        return NamesPart(
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            unchanged=int(data["unchanged"]),
            notices=tuple(str(n) for n in data["notices"]),
        )


@dataclass(frozen=True)
class Replay:
    """What an incremental plan (`reconciler.incremental`) hands `make_plan`: every declared
    family's handle in catalog order, the results of those not computed again, and the names'
    part, all as the last plan left them."""

    handles: Sequence[str]
    results: Mapping[str, FamilyResult]
    names: NamesPart


def estimate(
    requests: int,
    *,
    rate_limit: int = DEFAULT_RATE_LIMIT,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> Estimate:
    """Time for `requests` at the store's sustained rate (limit per window).

    Conservative on purpose: it assumes the window's burst is already spent (by an earlier
    run, another app or the refresh), which is what a merchandiser waiting on CI would see.
    """
    limit = max(1, rate_limit)
    return Estimate(
        requests=requests,
        # Rounded as the JSON carries it, so a saved plan reads back equal to the value.
        seconds=round(requests * window_seconds / limit, 1),
        rate_limit=limit,
        window_seconds=window_seconds,
    )


def make_plan(
    catalog: Catalog,
    live: Live,
    *,
    store: str,
    managed: ManagedIndex | None = None,
    images: Mapping[str, Mapping[str, str]] | None = None,
    adopt_images: bool = False,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    rate_limit: int = DEFAULT_RATE_LIMIT,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    git_commit: str | None = None,
    created_at: str = "",
    catalog_digest: str | None = None,
    allow: Sequence[Rule] = (),
    memo: FamilyMemo | None = None,
    limits: Limits = DEFAULT_LIMITS,
    replay: Replay | None = None,
) -> Plan:
    """Compare the catalog with the live store and say exactly what apply must do.

    - Identity by natural key: a product by handle, a variant by SKU, names case-insensitively.
    - Only declared fields are compared; live products the catalog never managed are never
      touched; managed ones no longer declared are deactivated or deleted only when
      `settings.prune` says so (otherwise a notice counts them).
    - `images`: handle -> sha256 -> image id of what apply uploaded (the store cannot tell).
      A handle present with no ids has a record of uploads whose outcome is unknown. A family
      with images in the store and no record at all (a lost state file) has unknown images:
      nothing is uploaded for it unless `adopt_images`, which records the store's images
      against the catalog's in catalog order (no request) and uploads only the ones beyond.
    - `targets` / `excludes`: handles or SKUs; a key selects the product that holds it.
    - Fields `settings.fields` gives to the store are never compared or written; fields it
      marks as set on create only are compared and written only for what the store lacks.
    - The plan carries the `settings.guardrails` it was checked under and every change that
      breaks one (`reconciler.guardrails`); apply refuses those unless allowed. `allow`
      (`catalog plan --allow`) marks the ones it names as allowed, for the reader.
    - `memo`: per-family results of earlier plans (`FamilyMemo`): a family whose inputs are
      unchanged is not compared again; the plan is the same as without it.
    - `limits` (the provider's `Limits`, read as a value): prices compare at its money places
      (0.125 and 0.13 are one price to a 2-place store), the leaf-only category notice is
      given only where the store refuses a parent category, and fields it has no place for
      (`held`) are never compared. (An archive's warning is the compile's: it sees every one.)
    - `replay`: an incremental plan (`reconciler.incremental`): `catalog` and `live` then hold
      only the families it computes again or whose replayed change needs them; the others'
      results, the names' part and the declared count come from `replay`, and nothing is
      pruned (the caller has made sure nothing is to be).
    The result does not depend on file or declaration order: the catalog is canonical and
    every list here is built in key order.
    """
    # Imported here: the guardrails read plans, so plan cannot import them at the top.
    from reconciler import guardrails

    digest = catalog_digest if catalog_digest is not None else catalog.digest()
    catalog = ownership.owned(held(catalog, limits), live)
    planner = _Planner(
        catalog,
        live,
        managed=managed or {},
        images=images or {},
        adopt_images=adopt_images,
        targets=targets,
        excludes=excludes,
        memo=memo,
        limits=limits,
    )
    stamp = _Stamp(store, rate_limit, window_seconds, git_commit, created_at, digest)
    if replay is None:
        plan = planner.assemble(
            [planner.family(p) for p in planner.products], planner.names(), stamp
        )
        return guardrails.check(plan, catalog, live, allow=allow)
    products = {p.handle: p for p in catalog.products}
    results = [
        found if (found := replay.results.get(h)) is not None else planner.family(products[h])
        for h in replay.handles
    ]
    plan = planner.assemble(results, replay.names, stamp, prune=False)
    return guardrails.check(plan, catalog, live, allow=allow, declared=len(replay.handles))


@dataclass(frozen=True)
class _Stamp:
    """What a plan says of where and when it was made."""

    store: str
    rate_limit: int
    window_seconds: float
    git_commit: str | None
    created_at: str
    catalog_digest: str


def held(catalog: Catalog, limits: Limits) -> Catalog:
    """`catalog` without the fields the platform has no place for (validate warns of each):
    never written, so never compared, or every plan would show them again."""
    if limits.family_descriptions and limits.brand_descriptions:
        return catalog
    products = catalog.products
    if not limits.family_descriptions and any(p.description is not None for p in products):
        products = tuple(
            replace(p, description=None) if p.description is not None else p for p in products
        )
    brands, suppliers = catalog.brands, catalog.suppliers
    if not limits.brand_descriptions:
        brands = tuple(replace(b, description=None) for b in brands)
        suppliers = tuple(replace(s, description=None) for s in suppliers)
    return replace(catalog, products=products, brands=brands, suppliers=suppliers)


class _Planner:
    def __init__(
        self,
        catalog: Catalog,
        live: Live,
        *,
        managed: ManagedIndex,
        images: Mapping[str, Mapping[str, str]],
        adopt_images: bool = False,
        targets: Sequence[str],
        excludes: Sequence[str],
        memo: FamilyMemo | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.catalog = catalog
        self.memo = memo
        self._volatile = False  # the family being planned read other families
        self.limits = limits
        self.places = limits.money_places
        self.live = live
        self.managed = managed
        self.images = images
        self.adopt_images = adopt_images
        self.unknown_images = 0  # families whose store images this state has no record of
        self.notices: list[str] = []
        self.unchanged = 0
        self._category_paths: dict[tuple[str, ...], tuple[str, ...]] | None = None
        self._name_counts: Counter[str] | None = None
        self._kept_fields: dict[object, FieldChange] = {}
        self.products = self._select(targets, excludes)

    # -- scope -------------------------------------------------------------------------------

    def _select(self, targets: Sequence[str], excludes: Sequence[str]) -> list[Product]:
        products = list(self.catalog.products)
        if not targets and not excludes:
            self.targeted: set[str] | None = None
            return products
        managed_handles = set(self.managed.get(str(Kind.PRODUCT), {}))
        known = {p.handle for p in products} | managed_handles

        def handles_for(key: str) -> set[str]:
            found = {p.handle for p in products if key == p.handle or key in _skus(p)}
            if key in managed_handles:
                found.add(key)
            owner = self.live.sku_owner.get(key)
            if owner in known:
                found.add(owner)
            return found

        chosen = set(known)
        if targets:
            chosen = set()
            for key in targets:
                hits = handles_for(key)
                if not hits:
                    raise UsageError(
                        f"--target {key!r} matches no product handle or SKU in the catalog "
                        "(or managed by it); check the spelling."
                    )
                chosen |= hits
        for key in excludes:
            chosen -= handles_for(key)
        self.targeted = chosen
        selected = [p for p in products if p.handle in chosen]
        self.notices.append(
            f"Targeted plan: {len(selected)} of {len(products)} catalog products considered; "
            "everything else is left out of this plan."
        )
        return selected

    def _in_scope(self, handle: str) -> bool:
        return self.targeted is None or handle in self.targeted

    # -- the plan ----------------------------------------------------------------------------

    def assemble(
        self,
        results: Sequence[FamilyResult],
        names: NamesPart,
        stamp: _Stamp,
        *,
        prune: bool = True,
    ) -> Plan:
        """The plan from every declared family's result (in catalog order) and the names' part,
        computed or replayed (`prune`: False when the caller knows nothing is to be pruned; this
        planner then need not see every family)."""
        product_changes: list[Change] = []
        for r in results:
            self.notices.extend(r.notices)
            self.unknown_images += r.unknown_images
            if r.unchanged:
                self.unchanged += 1
            elif r.change is not None:
                product_changes.append(r.change)
        if prune:
            product_changes.extend(self._prune())
        product_changes.sort(key=lambda c: c.key)
        if self.unknown_images:
            n = self.unknown_images
            self.notices.append(
                f"{n} product{' has' if n == 1 else 's have'} images in the store that this "
                "state file has no record of (state lost?); nothing is uploaded for "
                f'{"it" if n == 1 else "them"}. Run "catalog plan --adopt-images" to record '
                "the store's images in catalog order without uploading."
            )
        self.notices.extend(names.notices)
        kept = tuple(c for c in product_changes if c.action is not Action.NOOP)
        self.unchanged += len(product_changes) - len(kept) + names.unchanged
        if self.memo is not None:
            self.memo.names = names
        return Plan(
            changes=names.changes + kept,
            catalog_digest=stamp.catalog_digest,
            store=stamp.store,
            tax_exclusive=self.live.tax_exclusive,
            # Costed by the provider's compile (`reconciler.api.make_plan`), never here.
            estimate=estimate(0, rate_limit=stamp.rate_limit, window_seconds=stamp.window_seconds),
            git_commit=stamp.git_commit,
            unchanged=self.unchanged,
            notices=tuple(self.notices),
            created_at=stamp.created_at,
        )

    # -- names: brands, suppliers, tags, attributes, categories (created first) --------------

    def names(self) -> NamesPart:
        """The names' part of the plan: what the catalog's families and declarations use."""
        c = self.catalog
        whole = self.targeted is None
        brands: dict[str, tuple[str, str | None]] = {}
        suppliers: dict[str, tuple[str, str | None]] = {}
        tags: dict[str, str] = {}
        attributes: dict[str, str] = {}
        categories: dict[tuple[str, ...], tuple[str, ...]] = {}
        if whole:
            for b in c.brands:
                brands.setdefault(name_key(b.name), (b.name, b.description))
            for s in c.suppliers:
                suppliers.setdefault(name_key(s.name), (s.name, s.description))
            for t in c.tags:
                tags.setdefault(name_key(t), t)
        declared_brand = {name_key(b.name): b.description for b in c.brands}
        declared_supplier = {name_key(s.name): s.description for s in c.suppliers}
        for p in self.products:
            if p.brand:
                brands.setdefault(
                    name_key(p.brand), (p.brand, declared_brand.get(name_key(p.brand)))
                )
            if p.supplier:
                key = name_key(p.supplier)
                suppliers.setdefault(key, (p.supplier, declared_supplier.get(key)))
            for t in p.tags or ():
                tags.setdefault(name_key(t), t)
            for o in p.options:
                attributes.setdefault(name_key(o), o)
            if p.category:
                for depth in range(1, len(p.category) + 1):
                    prefix = p.category[:depth]
                    categories.setdefault(path_key(prefix), prefix)
        names = self.live.names
        notices = self._note_duplicates(
            [
                (Kind.BRAND, [brands[k][0] for k in sorted(brands)], name_key),
                (Kind.SUPPLIER, [suppliers[k][0] for k in sorted(suppliers)], name_key),
                (Kind.TAG, [tags[k] for k in sorted(tags)], name_key),
                (Kind.ATTRIBUTE, [attributes[k] for k in sorted(attributes)], name_key),
                (
                    Kind.CATEGORY,
                    [" / ".join(categories[k]) for k in sorted(categories)],
                    lambda label: " / ".join(path_key(label.split(" / "))),
                ),
            ]
        )
        out: list[Change] = []
        for kind, wanted, existing in (
            (Kind.BRAND, brands, names.brands),
            (Kind.SUPPLIER, suppliers, names.suppliers),
        ):
            for key in sorted(wanted):
                name, description = wanted[key]
                out.append(self._described(kind, name, description, existing.get(key)))
        for kind, simple, existing in (
            (Kind.TAG, tags, names.tags),
            (Kind.ATTRIBUTE, attributes, names.attributes),
        ):
            for key in sorted(simple):
                found = existing.get(key)
                if found is None:
                    out.append(
                        Change(
                            kind,
                            simple[key],
                            Action.CREATE,
                            (FieldChange("name", None, simple[key]),),
                        )
                    )
                else:
                    out.append(Change(kind, simple[key], Action.NOOP, remote_id=found.id))
        for cat_key in sorted(categories):
            path = categories[cat_key]
            label = " / ".join(path)
            found_cat = names.categories.get(cat_key)
            if found_cat is None:
                out.append(
                    Change(
                        Kind.CATEGORY,
                        label,
                        Action.CREATE,
                        (FieldChange("name", None, path[-1]),)
                        + (
                            (FieldChange("parent", None, " / ".join(path[:-1])),)
                            if len(path) > 1
                            else ()
                        ),
                    )
                )
            else:
                out.append(Change(Kind.CATEGORY, label, Action.NOOP, remote_id=found_cat.id))
        kept = tuple(c for c in out if c.action is not Action.NOOP)
        return NamesPart(kept, len(out) - len(kept), tuple(notices))

    def _note_duplicates(
        self, wanted: list[tuple[Kind, list[str], Callable[[str], str]]]
    ) -> list[str]:
        """Names the catalog uses that the store holds more than once (made by two state
        files, or by hand): said, with the one plan and apply use."""
        notices: list[str] = []
        for kind, labels, key in wanted:
            for label in labels:
                ids = self.live.names.duplicates.get((str(kind), key(label)))
                if ids:
                    notices.append(
                        f'{kind} "{label}" is in the store {len(ids)} times ({", ".join(ids)}); '
                        f"the oldest, {ids[0]}, is used and the others are left alone (merge or "
                        "delete them in Lightspeed)."
                    )
        return notices

    def _described(
        self, kind: Kind, name: str, description: str | None, found: Named | None
    ) -> Change:
        if found is None:
            fields = [FieldChange("name", None, name)]
            if description is not None:
                fields.append(FieldChange("description", None, description))
            return Change(kind, name, Action.CREATE, tuple(fields))
        live_description = found.description or ""
        if description is not None and description != live_description:
            drift = self._drift(kind, name, "description", live_description)
            return Change(
                kind,
                name,
                Action.UPDATE,
                (FieldChange("description", live_description, description, drift),),
                remote_id=found.id,
                live_version=found.version,
            )
        return Change(kind, name, Action.NOOP, remote_id=found.id, live_version=found.version)

    # -- products ----------------------------------------------------------------------------

    def family(self, p: Product) -> FamilyResult:
        """The family's result: replayed from the memo when its key is the one it was
        remembered under, else computed (and given to the memo to store, unless it read other
        families)."""
        memo = self.memo
        if memo is None:
            return self._compute(p)
        key = self._family_key(p, self.live.products.get(p.handle))
        if memo.known.key(p.handle) == key:
            text = memo.known.entry(p.handle)
            result = None if text is None else FamilyResult.from_entry(text)
            if result is not None:
                memo.reused.add(p.handle)
                return result
        result = self._compute(p)
        memo.computed += 1
        if not self._volatile:
            memo.fresh[p.handle] = (key, result.to_entry())
        return result

    def _compute(self, p: Product) -> FamilyResult:
        """`_product(p)` with the notices it gave and its unknown images taken as its own."""
        notices_before, unknown_before = len(self.notices), self.unknown_images
        self._volatile = False
        change = self._product(p)
        notices = tuple(self.notices[notices_before:])
        del self.notices[notices_before:]
        unknown = self.unknown_images - unknown_before
        self.unknown_images = unknown_before
        if change is not None and change.action is Action.NOOP:
            return FamilyResult(None, notices, unknown, unchanged=True)
        return FamilyResult(change, notices, unknown)

    def _family_key(self, p: Product, found: LiveProduct | None) -> str:
        """Everything one family's result depends on besides the memo's scope, hashed."""
        assert self.memo is not None
        skus = {v.sku for v in p.sellables()}
        live_part: object = None
        if found is not None:
            skus.update(found.rows)
            live_part = (
                found.remote_id,
                found.family_id,
                found.version,
                found.is_family,
                found.composite,
                found.image_ids,
                sorted((sku, row.id, row.version) for sku, row in found.rows.items()),
            )
        ledger = [
            # The stored text when the ledger offers it (`ManagedRow`): nothing is parsed.
            (str(kind), key, m.remote_id, getattr(m, "applied_text", None) or m.applied)
            for kind, keys in ((Kind.PRODUCT, [p.handle]), (Kind.VARIANT, sorted(skus)))
            for key in keys
            if (m := self._managed(kind, key)) is not None
        ]
        uploaded = self.images.get(p.handle)
        blob = repr(
            (
                self.memo.scope,
                self.limits,
                self.memo.digests.get(p.handle) or product_digest(p),
                live_part,
                ledger,
                None if uploaded is None else sorted(uploaded.items()),
            )
        )
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def _product(self, p: Product) -> Change | None:
        found = self.live.products.get(p.handle)
        if (
            self.limits.leaf_only_categories
            and p.category
            and (found is None or found.product.category != p.category)
        ):
            self._check_leaf(p)
        if found is None:
            return self._create(p)
        for problem in (*found.problems, *found.notices):
            self.notices.append(f"{p.handle}: {problem}.")
        if found.is_family != p.is_family:
            shape = "a product with variants" if found.is_family else "a simple product"
            self.notices.append(
                f"{p.handle}: is {shape} in the store but not in the catalog; the store cannot "
                "change a product's shape, so it is left out of this plan (recreate it by hand)."
            )
            return None
        return self._update(p, found)

    def _name_shared(self, name: str) -> bool:
        """Whether more than one live family has this name (case-insensitively)."""
        self._volatile = True
        if self._name_counts is None:
            self._name_counts = Counter(
                name_key(lp.product.name) for lp in self.live.products.values()
            )
        return self._name_counts[name_key(name)] > 1

    def _check_leaf(self, p: Product) -> None:
        """The store only puts products on a category without subcategories (lightspeed-xseries.md
        §5)."""
        assert p.category is not None
        self._volatile = True  # other products' categories decide it
        key = path_key(p.category)
        if self._category_paths is None:
            paths = {k: c.path for k, c in self.live.names.categories.items()}
            paths.update(
                {path_key(q.category): q.category for q in self.catalog.products if q.category}
            )
            self._category_paths = paths
        below = sorted(
            v for k, v in self._category_paths.items() if len(k) > len(key) and k[: len(key)] == key
        )
        if below:
            self.notices.append(
                f'{p.handle}: category "{" / ".join(p.category)}" has subcategories (e.g. '
                f'"{" / ".join(below[0])}"), and the store only accepts products on a category '
                "without any; apply will be refused until the product uses a deeper category."
            )

    def _create(self, p: Product) -> Change:
        self._volatile = True  # the SKUs other families hold decide its notices
        # A name another family already has is no reason to stop: real stores hold several
        # families under one name. Identity is the handle and the SKUs.
        for sku in _skus(p):
            held = self.live.sku_owner.get(sku)
            if held is not None:
                self.notices.append(
                    f'{p.handle}: SKU "{sku}" already exists in the store under product '
                    f'"{held}"; move or remove it there first.'
                )
        fields = [FieldChange(k, None, v) for k, v in family_values(p, declared_only=True).items()]
        if not p.is_family:
            row = p.sellables()[0]
            fields.insert(1, FieldChange("sku", None, row.sku))
            fields.extend(
                FieldChange(k, None, v)
                for k, v in row_values(
                    row, declared_only=True, family=False, places=self.places
                ).items()
            )
            children: list[Change] = []
        else:
            children = [
                Change(
                    Kind.VARIANT,
                    v.sku,
                    Action.CREATE,
                    tuple(
                        FieldChange(k, None, val)
                        for k, val in row_values(
                            v, declared_only=True, family=True, places=self.places
                        ).items()
                    ),
                )
                for v in p.sellables()
            ]
        children.extend(
            Change(Kind.IMAGE, img.path, Action.CREATE, (FieldChange("position", None, i),))
            for i, img in enumerate(self._distinct_images(p), start=1)
        )
        return Change(
            Kind.PRODUCT,
            p.handle,
            Action.CREATE,
            tuple(fields),
            tuple(children),
        )

    def _update(self, p: Product, found: LiveProduct) -> Change:
        live_p = found.product
        product_managed = self._managed(Kind.PRODUCT, p.handle)
        desired = family_values(p, declared_only=True)
        current = _align(desired, family_values(live_p, declared_only=False), fast=True)
        fields = [
            self._field(Kind.PRODUCT, p.handle, d.field, d.before, d.after)
            for d in diff_fields(desired, current, order=FAMILY_FIELDS)
        ]
        children: list[Change] = []
        adopted: list[FieldChange] = [
            self._kept(k, v) for k, v in desired.items() if k not in {f.field for f in fields}
        ]
        if not p.is_family:
            row = p.sellables()[0]
            live_row = found.rows.get(row.sku)
            if live_row is None:
                self.notices.append(
                    f'{p.handle}: the store holds it under SKU "{live_p.sku}", the catalog says '
                    f'"{row.sku}"; the store cannot change a SKU, so it is left out of this plan.'
                )
                return Change(Kind.PRODUCT, p.handle, Action.NOOP)
            want = row_values(row, declared_only=True, family=False, places=self.places)
            have = row_values(
                live_row.values, declared_only=False, family=False, places=self.places
            )
            row_diffs = diff_fields(want, have, order=ROW_FIELDS)
            fields.extend(
                self._field(Kind.PRODUCT, p.handle, d.field, d.before, d.after) for d in row_diffs
            )
            changed = {d.field for d in row_diffs}
            adopted.extend(self._kept(k, v) for k, v in want.items() if k not in changed)
        else:
            declared = set()
            for v in p.sellables():
                declared.add(v.sku)
                child = self._variant(p, v, found)
                if child is not None:
                    children.append(child)
            children.extend(self._removed_variants(p, found, declared))
        children.extend(self._images(p, found))
        changed_children = [c for c in children if c.action is not Action.ADOPT]
        taken = sum(1 for c in children if c.kind is Kind.IMAGE and c.action is Action.ADOPT)
        note = (
            f"{taken} image{'' if taken == 1 else 's'} in the store recorded as the catalog's, "
            "in catalog order, without uploading"
            if taken
            else None
        )
        if not fields and not changed_children:
            if product_managed is not None and not taken:
                return Change(
                    Kind.PRODUCT,
                    p.handle,
                    Action.NOOP,
                    remote_id=found.remote_id,
                    live_version=found.version,
                )
            # Exists, identical, never managed: record it, write nothing.
            return Change(
                Kind.PRODUCT,
                p.handle,
                Action.ADOPT,
                tuple(adopted),
                tuple(children),
                remote_id=found.remote_id,
                live_version=found.version,
                note=note,
            )
        return Change(
            Kind.PRODUCT,
            p.handle,
            Action.UPDATE,
            tuple(fields),
            tuple(children),
            remote_id=found.remote_id,
            live_version=found.version,
            note=note,
        )

    def _variant(self, p: Product, v: Variant, found: LiveProduct) -> Change | None:
        want = row_values(v, declared_only=True, family=True, places=self.places)
        live_row = found.rows.get(v.sku)
        if live_row is None:
            if self._name_shared(found.product.name):
                self.notices.append(
                    f'{p.handle}: the store adds variant "{v.sku}" to the family it finds by '
                    f'name, and another product in the store is also named "{p.name}"; give '
                    "the families distinct names first, or the variant may land in the other."
                )
            self._volatile = True  # other families' SKUs decide its notices
            held = self.live.sku_owner.get(v.sku)
            if held is not None and held != p.handle:
                self.notices.append(
                    f'{p.handle}: SKU "{v.sku}" already exists in the store under product '
                    f'"{held}"; move or remove it there first.'
                )
            # One 2.1 POST per variant added to an existing family (lightspeed-xseries.md §6.4).
            return Change(
                Kind.VARIANT,
                v.sku,
                Action.CREATE,
                tuple(FieldChange(k, None, val) for k, val in want.items()),
            )
        have = _align(
            want,
            row_values(live_row.values, declared_only=False, family=True, places=self.places),
            fast=True,
        )
        diffs = diff_fields(want, have, order=ROW_FIELDS)
        if diffs:
            return Change(
                Kind.VARIANT,
                v.sku,
                Action.UPDATE,
                tuple(self._field(Kind.VARIANT, v.sku, d.field, d.before, d.after) for d in diffs),
                remote_id=live_row.id,
                live_version=live_row.version,
            )
        if (
            self._managed(Kind.VARIANT, v.sku) is None
            and self._managed(Kind.PRODUCT, p.handle) is None
        ):
            return Change(
                Kind.VARIANT,
                v.sku,
                Action.ADOPT,
                tuple(self._kept(k, val) for k, val in want.items()),
                remote_id=live_row.id,
                live_version=live_row.version,
            )
        return None

    def _removed_variants(self, p: Product, found: LiveProduct, declared: set[str]) -> list[Change]:
        """Managed variants of a declared family that the catalog no longer lists."""
        managed = self.managed.get(str(Kind.VARIANT), {})
        gone = sorted(sku for sku in found.rows if sku in managed and sku not in declared)
        return [
            c for sku in gone if (c := self._retire(Kind.VARIANT, sku, found, [sku])) is not None
        ]

    def _prune(self) -> list[Change]:
        """Managed products the catalog no longer declares."""
        declared = {p.handle for p in self.catalog.products}
        gone = sorted(
            h
            for h in self.managed.get(str(Kind.PRODUCT), {})
            if h not in declared and self._in_scope(h) and h in self.live.products
        )
        if self.memo is not None:
            self.memo.gone = len(gone)
        if not gone:
            return []
        if self.catalog.settings.prune is Prune.NONE:
            self.notices.append(
                f"{len(gone)} managed product{'s are' if len(gone) != 1 else ' is'} no longer "
                "declared in the catalog and stay as they are in the store; set settings.prune "
                "to deactivate or delete to remove them."
            )
            return []
        out = []
        for handle in gone:
            found = self.live.products[handle]
            change = self._retire(Kind.PRODUCT, handle, found, sorted(found.rows))
            if change is not None:
                out.append(change)
        return out

    def _retire(self, kind: Kind, key: str, found: LiveProduct, skus: list[str]) -> Change | None:
        prune = self.catalog.settings.prune
        if prune is Prune.NONE:
            return None
        if prune is Prune.DELETE:
            if kind is Kind.VARIANT:
                row = found.rows[key]
                return Change(kind, key, Action.DELETE, remote_id=row.id, live_version=row.version)
            # DELETE /products/{id}/all removes the whole family in one call.
            return Change(
                kind,
                key,
                Action.DELETE,
                remote_id=found.remote_id,
                live_version=found.version,
            )
        active = [s for s in skus if found.rows[s].values.active]
        if not active:
            return None  # already inactive: nothing to do

        def deactivate_row(
            k: Kind, k_key: str, remote_id: str | None, version: str | None
        ) -> Change:
            return Change(
                k,
                k_key,
                Action.DEACTIVATE,
                (FieldChange("active", True, False),),
                remote_id=remote_id,
                live_version=version,
            )

        if kind is Kind.VARIANT:
            row = found.rows[key]
            return deactivate_row(kind, key, row.id, row.version)
        if not found.is_family:
            return deactivate_row(kind, key, found.remote_id, found.version)
        # `is_active` is a row's own field: one request per active variant.
        children = tuple(
            deactivate_row(Kind.VARIANT, s, found.rows[s].id, found.rows[s].version) for s in active
        )
        return Change(
            kind,
            key,
            Action.DEACTIVATE,
            (),
            children,
            remote_id=found.remote_id,
            live_version=found.version,
        )

    def _images(self, p: Product, found: LiveProduct) -> list[Change]:
        """Family images: upload new files, remove ones this tool uploaded and the catalog
        dropped, and fix their order. Images someone else added in the store are left alone."""
        if p.images is None:
            return []
        live_ids = list(found.image_ids)
        if p.handle not in self.images and live_ids:
            if not self.adopt_images:
                self.unknown_images += 1
                return []
            return self._adopt_images(p, live_ids)
        uploaded = self.images.get(p.handle, {})
        out: list[Change] = []
        present: list[tuple[int, str, str]] = []  # (desired position, path, image id)
        wanted: set[str] = set()
        for position, img in enumerate(self._distinct_images(p), start=1):
            image_id = uploaded.get(img.sha256)
            if image_id is None:
                out.append(
                    Change(
                        Kind.IMAGE,
                        img.path,
                        Action.CREATE,
                        (FieldChange("position", None, position),),
                    )
                )
                continue
            wanted.add(image_id)
            # An upload the store is still processing may not be listed yet: it is there.
            if image_id in live_ids:
                present.append((position, img.path, image_id))
        for sha, image_id in sorted(uploaded.items()):
            if image_id in live_ids and image_id not in wanted:
                out.append(
                    Change(
                        Kind.IMAGE,
                        f"image {live_ids.index(image_id) + 1} (removed from the catalog)",
                        Action.DELETE,
                        (FieldChange("file", sha[:12], None),),
                        remote_id=image_id,
                    )
                )
        live_order = [i for i in live_ids if i in {pid for _, _, pid in present}]
        if live_order != [pid for _, _, pid in present]:
            for rank, (position, path, image_id) in enumerate(present):
                if live_order[rank] != image_id:
                    out.append(
                        Change(
                            Kind.IMAGE,
                            path,
                            Action.UPDATE,
                            (FieldChange("position", live_ids.index(image_id) + 1, position),),
                            remote_id=image_id,
                        )
                    )
        return out

    def _distinct_images(self, p: Product) -> list[Image]:
        """The family's images with each content once, in catalog order, and a notice for each
        repeat. The store reuses the existing image when the same file is uploaded again to the
        same product (lightspeed-xseries.md §7), so a family cannot hold two images of identical
        bytes: a
        second path to the same bytes adds nothing, and planning it would never converge."""
        first_path: dict[str, str] = {}
        out: list[Image] = []
        for img in p.images or ():
            first = first_path.setdefault(img.sha256, img.path)
            if first == img.path:
                out.append(img)
                continue
            self.notices.append(
                f"{p.handle}: image {quote(img.path)} has the same bytes as {quote(first)}; the "
                "store keeps one image for both (it reuses an upload of the same file), so it is "
                "planned once, at the first one's position."
            )
        return out

    def _adopt_images(self, p: Product, live_ids: list[str]) -> list[Change]:
        """No record of this family's images (a lost state file): take the store's images,
        in their order, to be the catalog's, by position; upload only the catalog's images
        beyond the store's count. Store images beyond the catalog's are not ours: left alone."""
        out: list[Change] = []
        for position, img in enumerate(self._distinct_images(p), start=1):
            if position <= len(live_ids):
                out.append(
                    Change(
                        Kind.IMAGE,
                        img.path,
                        Action.ADOPT,
                        (
                            FieldChange("position", position, position),
                            FieldChange("sha256", img.sha256, img.sha256),
                        ),
                        remote_id=live_ids[position - 1],
                        note="adopted: the store's image at this position is taken as this file",
                    )
                )
            else:
                out.append(
                    Change(
                        Kind.IMAGE,
                        img.path,
                        Action.CREATE,
                        (FieldChange("position", None, position),),
                    )
                )
        return out

    # -- helpers -----------------------------------------------------------------------------

    def _managed(self, kind: Kind, key: str) -> ManagedLike | None:
        return self.managed.get(str(kind), {}).get(key)

    def _drift(self, kind: Kind, key: str, field_name: str, live_value: Json) -> bool:
        found = self._managed(kind, key)
        if found is None or field_name not in found.applied:
            return False
        return bool(found.applied[field_name] != live_value)

    def _field(self, kind: Kind, key: str, name: str, before: Json, after: Json) -> FieldChange:
        return FieldChange(name, before, after, self._drift(kind, key, name, before))

    def _kept(self, name: str, value: Json) -> FieldChange:
        """`FieldChange(name, value, value)`: what an adoption records of a declared field.
        One instance per distinct value of the fields whose values repeat across families: an
        adoption of 100,000 families records some 2,500,000 fields, most of them a price or
        an options mapping met before. (Plan values are never changed in place.)"""
        if name not in _REPEATING_FIELDS:
            return FieldChange(name, value, value)
        # With each part's type: 1, 1.0 and True are equal keys, and must stay three values.
        frozen: object = value
        if isinstance(value, dict):
            frozen = tuple((k, type(v), v) for k, v in value.items())
        elif isinstance(value, list):
            frozen = tuple((type(v), v) for v in value)
        key = (name, type(value), frozen)
        try:
            found = self._kept_fields.get(key)
        except TypeError:  # an unhashable part: not shared
            return FieldChange(name, value, value)
        if found is None:
            found = self._kept_fields[key] = FieldChange(name, value, value)
        return found


# Fields whose values repeat across families and rows (names, SKUs, barcodes mostly do not).
_REPEATING_FIELDS = frozenset(
    {"price", "supply_price", "active", "options", "brand", "supplier", "category", "tags"}
)


def new_family_active(flags: Sequence[bool | None]) -> bool:
    """The `is_active` a new family is created with: what most of its variants declare
    (undeclared counts as active), so the fewest variants need a PUT of their own after."""
    active = [f is not False for f in flags]
    return sum(active) * 2 >= len(active)


def _skus(p: Product) -> list[str]:
    return [v.sku for v in p.sellables() if v.sku]


def _align(
    desired: Mapping[str, Json], live: dict[str, Json], *, fast: bool = False
) -> dict[str, Json]:
    """Spell live names like the catalog when they are the same name (case-insensitively),
    since names are identities: "ACME" in the store is the catalog's "Acme", not a change.

    `fast`: when the declared fields already agree exactly (the usual case), return `live`
    as it is; respelling only matters for values that differ.
    """
    if fast and all(live.get(k) == v for k, v in desired.items()):
        return live
    out = dict(live)
    for key in ("brand", "supplier", "category"):
        want, have = desired.get(key), out.get(key)
        if isinstance(want, str) and isinstance(have, str) and name_key(want) == name_key(have):
            out[key] = want
    for key in ("tags", "options"):
        want, have = desired.get(key), out.get(key)
        if isinstance(want, list) and isinstance(have, list):
            spelled = {name_key(w): w for w in want}
            aligned = [str(spelled.get(name_key(h), h)) for h in have]
            out[key] = list(sorted_names(aligned)) if key == "tags" else aligned
        elif isinstance(want, dict) and isinstance(have, dict):  # a variant's options
            spelled = {name_key(w): w for w in want}
            out[key] = {spelled.get(name_key(h), h): val for h, val in have.items()}
    return out
