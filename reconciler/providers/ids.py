"""The compile's id resolver every provider starts from: name -> id, category path -> id and
handle/SKU -> id for everything a payload may reference, seeded from the live store and taught
each created object's id as its step finishes (`Compiled.resolver`). A platform subclasses it
for the kinds it names and what else its bodies reference (R-Series: attribute sets).

Used only by the thread running the apply: payloads are built there, just before a step is
handed to a worker, when everything it depends on is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from reconciler.errors import Unresolved
from reconciler.live import Live, Named, label_path, path_key
from reconciler.model import name_key
from reconciler.plan import Kind


class Ids:
    # The named kinds a payload references by id (each platform says which it has).
    NAMED: ClassVar[tuple[Kind, ...]] = (Kind.BRAND, Kind.SUPPLIER)

    def __init__(self, live: Live) -> None:
        self.live = live
        names = live.names
        held: Mapping[Kind, Mapping[str, Named]] = {
            Kind.BRAND: names.brands,
            Kind.SUPPLIER: names.suppliers,
            Kind.TAG: names.tags,
            Kind.ATTRIBUTE: names.attributes,
        }
        self.named: dict[str, dict[str, str]] = {
            str(kind): {k: n.id for k, n in held[kind].items()} for kind in self.NAMED
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
            else:
                self.learn_other(kind, key, remote_id)

    def learn_other(self, kind: str, key: str, remote_id: str) -> None:
        """A learned id of a kind of the platform's own (R-Series: attribute sets)."""
        return None
