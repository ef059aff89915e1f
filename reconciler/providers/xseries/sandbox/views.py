"""How stored documents are served: the wire shapes of products' embedded objects, images,
categories and collections."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reconciler.providers.xseries.sandbox.db import Doc, Objects
from reconciler.providers.xseries.sandbox.images import SIZE_NAMES

JSON = dict[str, Any]


def money(value: Decimal | str | None) -> float | None:
    # JSON numbers on the wire; Decimal text goes through float only at the very edge, and
    # every value here has at most 15 significant digits, so the shortest repr is exact.
    return None if value is None else float(Decimal(value))


def envelope(data: list[JSON], docs: list[Doc] | None = None) -> JSON:
    versions = [int(d["version"]) for d in (data if docs is None else docs)]
    return {
        "data": data,
        "version": {
            "min": min(versions) if versions else None,
            "max": max(versions) if versions else None,
        },
    }


def render_attribute(doc: Doc) -> JSON:
    return {
        "id": doc["id"],
        "name": doc["name"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "deleted_at": doc["deleted_at"],
        "version": doc["version"],
    }


def image_urls(doc: Doc, base_url: str) -> JSON:
    return {size: f"{base_url}/cdn/images/{doc['sha']}/{size}.{doc['ext']}" for size in SIZE_NAMES}


def image_sample(doc: Doc, base_url: str) -> JSON:
    sizes = image_urls(doc, base_url)
    return {"id": doc["id"], "url": sizes["original"], "version": doc["version"], "sizes": sizes}


def render_image(doc: Doc, base_url: str | None = None) -> JSON:
    image: JSON = {
        "id": doc["id"],
        "product_id": doc["product_id"],
        "position": doc["position"],
        "status": doc["status"],
        "version": doc["version"],
    }
    if base_url is not None and doc["status"] == "uploaded":
        sizes = image_urls(doc, base_url)
        image["url"] = sizes["original"]
        image["sizes"] = sizes
    return image


class Lookups:
    """The objects a page of products embeds, each loaded once per page."""

    def __init__(self, db: Objects) -> None:
        self._brands = {d["id"]: d for d in db.page("brand", include_deleted=True)}
        self._suppliers = {d["id"]: d for d in db.page("supplier", include_deleted=True)}
        self._tags = {d["id"]: d for d in db.page("tag", include_deleted=True)}
        self._attributes = {d["id"]: d for d in db.page("attribute", include_deleted=True)}
        self._tree = CategoryTree(db.page("category", include_deleted=True))

    def attribute_name(self, id: str) -> str:
        doc = self._attributes.get(id)
        return str(doc["name"]) if doc else ""

    def brand_sample(self, id: str | None) -> JSON:
        doc = self._brands.get(id) if id else None
        if doc is None:
            return {}
        return {k: doc[k] for k in ("id", "name", "deleted_at", "version")}

    def supplier_sample(self, id: str | None) -> JSON:
        doc = self._suppliers.get(id) if id else None
        if doc is None:
            return {}
        return {k: doc[k] for k in ("id", "name", "description", "source", "deleted_at", "version")}

    def product_suppliers(self, product: Doc) -> list[JSON]:
        doc = self._suppliers.get(product["supplier_id"]) if product["supplier_id"] else None
        if doc is None:
            return []
        return [
            {
                "supplier_id": doc["id"],
                "supplier_name": doc["name"],
                "code": product["supplier_code"] or "",
                "price": money(product["supply_price"]) or 0.0,
            }
        ]

    def type_sample(self, id: str | None) -> JSON:
        if not id or not self._tree.known(id):
            return {}
        return self._tree.render_type(id)

    def tags(self, ids: list[str]) -> list[JSON]:
        return [
            {k: self._tags[i][k] for k in ("id", "name", "deleted_at", "version")}
            for i in ids
            if i in self._tags
        ]


class CategoryTree:
    def __init__(self, docs: list[Doc]) -> None:
        self._docs = {d["id"]: d for d in docs}
        self._children: dict[str, list[str]] = {}
        for doc in docs:
            parent = doc.get("parent_category_id")
            if parent and not doc["deleted_at"]:
                self._children.setdefault(parent, []).append(doc["id"])

    def known(self, id: str) -> bool:
        return id in self._docs

    def alive(self, id: str) -> Doc | None:
        doc = self._docs.get(id)
        return doc if doc is not None and not doc["deleted_at"] else None

    def alive_ids(self) -> list[str]:
        return [i for i, d in self._docs.items() if not d["deleted_at"]]

    def children(self, id: str) -> list[str]:
        return list(self._children.get(id, []))

    def descendants(self, id: str) -> list[str]:
        found: list[str] = []
        stack = self.children(id)
        while stack:
            child = stack.pop()
            found.append(child)
            stack.extend(self.children(child))
        return found

    def is_within(self, id: str, ancestor: str) -> bool:
        """Whether `id` is `ancestor` or lies beneath it."""
        current: str | None = id
        while current is not None:
            if current == ancestor:
                return True
            current = self._docs.get(current, {}).get("parent_category_id")
        return False

    def path(self, id: str) -> list[JSON]:
        path: list[JSON] = []
        current: str | None = id
        while current is not None and current in self._docs:
            doc = self._docs[current]
            path.insert(0, {"id": doc["id"], "name": doc["name"]})
            current = doc.get("parent_category_id")
        return path

    def render(self, id: str) -> JSON:
        doc = self._docs[id]
        path = self.path(id)
        category: JSON = {
            "id": id,
            "name": doc["name"],
            "root_category_id": path[0]["id"],
            "leaf_category": not self.children(id),
            "category_path": path,
        }
        # The published schema types parent_category_id as a plain string, so a root
        # category leaves it out rather than sending null.
        if doc.get("parent_category_id"):
            category["parent_category_id"] = doc["parent_category_id"]
        return category

    def render_type(self, id: str) -> JSON:
        doc = self._docs[id]
        return {
            "id": id,
            "name": doc["name"],
            "leaf_category": not self.children(id),
            "category_path": self.path(id),
            "deleted_at": doc["deleted_at"],
            "version": doc["version"],
        }
