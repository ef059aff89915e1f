"""Import from a live store, the library side of `catalog import` (owned by `reconciler.api`):
read the whole store the way `catalog plan` does, turn it into a catalog (`importer`), download
its images and remember them as uploaded by this tool. `cli/import_.py` writes the files and
reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from reconciler.importer import (
    ImportResult,
    Problem,
    Severity,
    catalog_from_live,
    image_path,
)
from reconciler.live import CatalogKeys, LiveProduct
from reconciler.model import Brand, Image, Supplier
from reconciler.providers.base import Connection, RefreshReport
from reconciler.rules import sniff_image
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger, transaction


@dataclass(frozen=True)
class FetchedImage:
    """A family image downloaded from the store, and what the images table must remember."""

    handle: str
    path: str  # relative to the catalog directory
    data: bytes
    sha256: str
    image_id: str
    product_id: str
    position: int  # 1-based, the store's order


@dataclass(frozen=True)
class LiveImport:
    result: ImportResult
    images: tuple[FetchedImage, ...]
    refresh: RefreshReport


def read_store(
    client: Connection,
    state: State,
    *,
    download: Callable[[str], bytes] | None,
    on_progress: Callable[[str], None] | None = None,
) -> LiveImport:
    """Read the whole store the way `catalog plan` does, and turn it into a catalog.

    The same change-feed refresh fills the same cache, and the same normalization reads it, so
    the imported catalog plans clean against the store by construction. Reads are paged per
    object kind; only images cost requests per object (their metadata, then their bytes).
    `download` fetches an image URL's bytes; without it images stay undeclared (unmanaged).
    """
    say = on_progress or (lambda _msg: None)
    cache = Cache(state)
    report = client.refresh(cache, mode="auto", on_progress=say)
    # Keyed by the handles the ledger knows (a platform without handles); made up for the rest.
    live = client.live(cache, keys=CatalogKeys.of(None, Ledger(state).managed("product")))
    # What the store holds that is read, but worth fixing there (a repeated option name).
    problems: list[Problem] = [
        Problem(f'product "{handle}": {notice}', severity=Severity.WARNING)
        for handle, lp in sorted(live.products.items())
        for notice in lp.notices
    ]
    with_images = [lp for _, lp in sorted(live.products.items()) if lp.image_ids]
    images: list[FetchedImage] = []
    if download is not None and with_images:
        say(f"Downloading the images of {len(with_images)} product(s)")
        images = _fetch_images(client, download, with_images, problems)
    by_handle: dict[str, list[Image]] = {}
    for i in images:
        by_handle.setdefault(i.handle, []).append(Image(i.path, i.sha256))
    result = catalog_from_live(
        {handle: lp.product for handle, lp in live.products.items()},
        brands=[Brand(n.name, n.description) for n in live.names.brands.values()],
        suppliers=[Supplier(n.name, n.description) for n in live.names.suppliers.values()],
        tags=[n.name for n in live.names.tags.values()],
        problems={h: lp.problems for h, lp in live.products.items() if lp.problems},
        images=by_handle,
        composites=[h for h, lp in live.products.items() if lp.composite],
    )
    kept = {p.handle for p in result.catalog.products}
    return LiveImport(
        result=replace(result, problems=(*result.problems, *problems)),
        images=tuple(i for i in images if i.handle in kept),
        refresh=report,
    )


def _fetch_images(
    client: Connection,
    download: Callable[[str], bytes],
    products: Sequence[LiveProduct],
    problems: list[Problem],
) -> list[FetchedImage]:
    """Each family's images in the store's order, numbered 1.. in the files they go to."""
    images: list[FetchedImage] = []
    for lp in products:
        handle = lp.product.handle
        if lp.composite:
            continue  # left out (and named) by catalog_from_live
        seen: set[str] = set()
        for image_id in lp.image_ids:
            fetched = _fetch_image(client, download, lp, image_id, len(seen) + 1, problems)
            if fetched is None:
                continue
            if fetched.sha256 in seen:
                problems.append(
                    Problem(
                        f'"{handle}" holds the same image twice (image {image_id}); the catalog '
                        "lists it once",
                        severity=Severity.WARNING,
                    )
                )
                continue
            seen.add(fetched.sha256)
            images.append(fetched)
    return images


def _fetch_image(
    client: Connection,
    download: Callable[[str], bytes],
    lp: LiveProduct,
    image_id: str,
    position: int,
    problems: list[Problem],
) -> FetchedImage | None:
    handle = lp.product.handle

    def skip(why: str) -> None:
        problems.append(
            Problem(
                f'image {image_id} of "{handle}" {why}; it is left out of the catalog (and so '
                "not managed)",
                severity=Severity.WARNING,
            )
        )

    url, status = client.image_url(image_id)
    if not url:
        skip(f"has no download address yet (status {status})")
        return None
    data = download(url)
    kind = sniff_image(data)
    if kind is None:
        skip("is not in a format the store accepts")
        return None
    return FetchedImage(
        handle=handle,
        path=image_path(handle, position, kind.extension),
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        image_id=image_id,
        product_id=lp.remote_id,
        position=position,
    )


def record_images(state: State, images: Sequence[FetchedImage]) -> None:
    """Remember the downloaded images as uploaded by this tool (handle -> sha256 -> image id).

    That is what apply consults before uploading: without these rows the next apply would
    upload every imported image again. A family's earlier rows are replaced, not merged, so a
    re-import never leaves an image id the store no longer lists.
    """
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    with transaction(state):
        for handle in sorted({i.handle for i in images}):
            state.db.execute("delete from images where handle = ?", [handle])
        state.db.table("images").insert_all(
            (
                {
                    "handle": i.handle,
                    "path": i.path,
                    "sha256": i.sha256,
                    "image_id": i.image_id,
                    "product_id": i.product_id,
                    "position": i.position,
                    "uploaded_at": at,
                }
                for i in images
            ),
            replace=True,
        )
