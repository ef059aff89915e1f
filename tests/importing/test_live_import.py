"""`catalog import` from the live store: import, validate, plan (adopt only), apply (no write)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api import apply_plan, make_plan
from reconciler.catalog import load_catalog
from reconciler.cli import main
from reconciler.cli.import_ import write_store_import
from reconciler.liveimport import LiveImport, read_store
from reconciler.model import Brand, Catalog, Product, Supplier, Variant
from reconciler.plan import Action, Kind, Plan
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.refresh import load_live, refresh
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

TOKEN = "import-test-token-51a7"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00imported-jpeg"


class Shop:
    """A sandbox store, a client on it, and the CDN an importer downloads images from."""

    def __init__(
        self, *, tax_exclusive: bool = False, path: str | Path = ":memory:", token: str = TOKEN
    ) -> None:
        self.store = SandboxStore(
            path,
            token=token,
            rate_limit=None,
            image_processing_seconds=0.0,
            tax_exclusive=tax_exclusive,
            seed=3,
        )
        transport = SandboxTransport(self.store)
        self.client = Client("http://sandbox.test", token, transport=transport)
        # Image URLs are public CDN addresses: fetched without the store's token.
        self.cdn = httpx.Client(transport=transport)

    def download(self, url: str) -> bytes:
        response = self.cdn.get(url)
        response.raise_for_status()
        return response.content

    def close(self) -> None:
        self.cdn.close()
        self.client.close()
        self.store.close()

    def seed(self, catalog: Catalog) -> None:
        """Put `catalog` into the store with the real planner and apply (own state file)."""
        with State(":memory:") as state:
            cache = Cache(state)
            refresh(self.client, cache)
            live = load_live(cache)
            plan = make_plan(catalog, live, store="sandbox")
            result = apply_plan(plan, self.client, state, live=live, parallelism=1)
            assert result.ok, [c for c in result.changes if c.outcome != "applied"]

    def writes(self) -> int:
        by_method = self.store.stats()["requests"]["by_method"]
        return sum(n for method, n in by_method.items() if method in WRITES)

    def upload(self, handle: str, data: bytes, name: str) -> str:
        product_id = next(
            o["id"]
            for page in self.client.iter_pages("product")
            for o in page.items
            if o["handle"] == handle and (o.get("has_variants") or not o.get("variant_parent_id"))
        )
        image = self.client.upload_image(
            product_id, filename=name, content=data, media_type="image/png"
        )
        deadline = time.monotonic() + 2
        while self.client.get_image(image["id"]).get("status") != "uploaded":
            assert time.monotonic() < deadline, "the sandbox never processed the upload"
            time.sleep(0.005)
        return str(image["id"])


@pytest.fixture
def shop() -> Iterator[Shop]:
    s = Shop()
    yield s
    s.close()


def varied() -> Catalog:
    """Families with 1-3 options, simple products, inactive ones, names and categories."""

    def v(sku: str, *options: tuple[str, str], **fields: object) -> Variant:
        return Variant(sku=sku, options=tuple(options), **fields)  # type: ignore[arg-type]

    return Catalog.build(
        products=[
            Product(
                handle="classic-tee",
                name="Classic Tee",
                description="<p>Soft cotton.\nTwo lines.</p>",
                brand="Acme",
                supplier="Acme Supply",
                supplier_code="ACME-TEE",
                category=("Apparel", "Tops"),
                tags=("cotton", "summer"),
                price=Decimal("25.00"),
                supply_price=Decimal("8.00"),
                options=("Size", "Colour"),
                variants=(
                    v("TEE-S-BLK", ("Size", "S"), ("Colour", "Black"), barcode="9300000000019"),
                    v("TEE-M-BLK", ("Size", "M"), ("Colour", "Black")),
                    v("TEE-XL-BLK", ("Size", "XL"), ("Colour", "Black"), price=Decimal("27.50")),
                ),
            ),
            Product(
                handle="wool-beanie",
                name="Wool Beanie",
                brand="Acme",
                category=("Apparel", "Hats"),
                price=Decimal("18.00"),
                options=("Colour",),
                variants=(
                    v("BEAN-RED", ("Colour", "Red")),
                    v("BEAN-BLU", ("Colour", "Blue"), active=False),
                ),
            ),
            Product(
                handle="trail-boot",
                name="Trail Boot",
                brand="Müller & Söhne",
                supplier="Boots Ltd",
                category=("Footwear",),
                price=Decimal("120.00"),
                supply_price=Decimal("60.00"),
                options=("Size", "Width", "Colour"),
                variants=(
                    v("BOOT-40-N-BRN", ("Size", "40"), ("Width", "N"), ("Colour", "Brown")),
                    v("BOOT-41-W-BRN", ("Size", "41"), ("Width", "W"), ("Colour", "Brown")),
                ),
            ),
            Product(handle="gift-wrap", name="Gift Wrap", sku="GIFT-WRAP", price=Decimal("3.50")),
            Product(
                handle="old-hat",
                name="Old Hat",
                sku="HAT-1",
                brand="Acme",
                tags=("sale",),
                active=False,
                price=Decimal("20.00"),
            ),
            Product(
                handle="sake-cup",
                name="日本酒のカップ",
                sku="SAKE-1",
                barcode="96385074",
                category=("Küche",),
                price=Decimal("9.95"),
            ),
        ],
        brands=[Brand("Acme", "Makers of tees"), Brand("Unused Brand")],
        suppliers=[Supplier("Acme Supply"), Supplier("Boots Ltd")],
        tags=["cotton", "summer", "sale", "clearance"],
    )


def import_into(shop: Shop, state: State, out: Path) -> LiveImport:
    imported = read_store(shop.client, state, download=shop.download)
    write_store_import(out, imported, state)
    return imported


def plan_against(shop: Shop, state: State, out: Path) -> Plan:
    cache = Cache(state)
    refresh(shop.client, cache)
    ledger = Ledger(state)
    return make_plan(
        load_catalog(out),
        load_live(cache),
        store="sandbox",
        managed={str(k): ledger.managed(str(k)) for k in Kind},
        images=Cache(state).uploaded_images(),
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_import_plans_clean_and_apply_adopts_without_a_write(shop: Shop, tmp_path: Path) -> None:
    shop.seed(varied())
    tee_front = shop.upload("classic-tee", PNG, "front.png")
    shop.upload("classic-tee", JPEG, "back.jpg")
    out = tmp_path / "catalog"
    with State(tmp_path / "state.db") as state:
        imported = import_into(shop, state, out)
        assert [p.message for p in imported.result.problems] == []
        catalog = load_catalog(out)
        assert len(catalog.products) == 6

        tee = catalog.product("classic-tee")
        assert tee is not None and tee.images is not None
        assert [i.path for i in tee.images] == [
            "images/classic-tee/01.png",
            "images/classic-tee/02.jpg",
        ]
        assert (out / "images/classic-tee/01.png").read_bytes() == PNG
        assert Cache(state).uploaded_images()["classic-tee"][tee.images[0].sha256] == tee_front

        plan = plan_against(shop, state, out)
        actions = {(c.kind, c.key): c.action for c in plan.all_changes()}
        assert set(actions.values()) == {Action.ADOPT}, actions
        assert plan.estimate.requests == 0
        assert actions[(Kind.PRODUCT, "old-hat")] is Action.ADOPT

        shop.store.reset_stats()
        live = load_live(Cache(state))
        result = apply_plan(plan, shop.client, state, live=live, parallelism=1)
        assert result.ok and shop.writes() == 0
        ledger = Ledger(state)
        assert set(ledger.managed(str(Kind.PRODUCT))) == {p.handle for p in catalog.products}
        skus = {v.sku for p in catalog.products for v in p.variants}
        assert set(ledger.managed(str(Kind.VARIANT))) == skus

        again = plan_against(shop, state, out)
        assert not again.has_changes, [(c.kind, c.key, c.action) for c in again.all_changes()]


def test_imported_yaml_is_short_and_keeps_what_the_store_holds(shop: Shop, tmp_path: Path) -> None:
    shop.seed(varied())
    out = tmp_path / "catalog"
    with State(":memory:") as state:
        import_into(shop, state, out)
    apparel = (out / "products/apparel-tops.yaml").read_text(encoding="utf-8")
    # The shared price is said once; only the XL's own price is listed on it.
    assert apparel.count("price: '25.00'") == 1 and "price: '27.50'" in apparel
    assert "active" not in apparel  # active: true is the store's default
    hats = (out / "products/apparel-hats.yaml").read_text(encoding="utf-8")
    assert "active: false" in hats
    loaded = load_catalog(out)
    hat = loaded.product("old-hat")
    assert hat is not None and hat.active is False and hat.tags == ("sale",)
    assert loaded.product("sake-cup") == Product(
        handle="sake-cup",
        name="日本酒のカップ",
        sku="SAKE-1",
        barcode="96385074",
        category=("Küche",),
        price=Decimal("9.95"),
    )
    # Every brand, supplier and tag of the store is declared, used or not.
    assert [b.name for b in loaded.brands] == ["Acme", "Müller & Söhne", "Unused Brand"]
    assert loaded.brands[0].description == "Makers of tees"
    assert "clearance" in loaded.tags


def test_a_second_import_is_byte_identical(shop: Shop, tmp_path: Path) -> None:
    shop.seed(varied())
    shop.upload("trail-boot", PNG, "boot.png")
    with State(tmp_path / "state.db") as state:
        import_into(shop, state, tmp_path / "first")
        requests = shop.store.stats()["requests"]["total"]
        import_into(shop, state, tmp_path / "second")
        # Warm: the change feed says nothing changed; only the image is fetched again.
        assert shop.store.stats()["requests"]["total"] - requests <= 9
    with State(":memory:") as cold:
        import_into(shop, cold, tmp_path / "third")
    assert snapshot(tmp_path / "first") == snapshot(tmp_path / "second")
    assert snapshot(tmp_path / "first") == snapshot(tmp_path / "third")


def test_real_handles_and_untidy_names_are_imported_as_the_store_holds_them(
    shop: Shop, tmp_path: Path
) -> None:
    shop.seed(varied())
    shop.client.create_product(
        {"name": "Escape", "handle": "../../x", "sku": "ESC-1", "price_including_tax": 2.0}
    )
    shop.client.create_product(
        {"name": "Shouty", "handle": "Shouty_Handle", "sku": "SH-1", "price_including_tax": 2.0}
    )
    shop.client.create_product(
        {"name": "Two\nlines", "handle": "two-lines", "sku": "TL-1", "price_including_tax": 2.0}
    )
    out = tmp_path / "nested" / "catalog"
    with State(":memory:") as state:
        imported = import_into(shop, state, out)
    assert imported.result.errors == ()
    messages = [p.message for p in imported.result.problems]
    assert any('"two-lines" holds a line break' in m for m in messages), messages
    catalog = load_catalog(out)
    assert catalog.product("../../x") is not None
    assert catalog.product("Shouty_Handle") is not None
    two = catalog.product("two-lines")
    assert two is not None and two.name == "Two\nlines"
    assert not (tmp_path / "x").exists()
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert load_catalog(out).product("gift-wrap") is not None


def test_reads_are_paged_never_one_request_per_product(shop: Shop, tmp_path: Path) -> None:
    shop.seed(
        Catalog.build(
            products=[
                Product(handle=f"p-{i:03d}", name=f"P {i}", sku=f"P-{i}", price=Decimal(1))
                for i in range(120)
            ]
        )
    )
    shop.store.reset_stats()
    with State(":memory:") as state:
        import_into(shop, state, tmp_path / "catalog")
    routes = shop.store.stats()["requests"]["by_route"]
    assert sum(routes.values()) <= 8, routes
    assert not any("/products/{" in r for r in routes), routes


def test_tax_exclusive_stores_import_their_own_price(tmp_path: Path) -> None:
    shop = Shop(tax_exclusive=True)
    try:
        shop.seed(varied())
        with State(tmp_path / "state.db") as state:
            import_into(shop, state, tmp_path / "catalog")
            gift = load_catalog(tmp_path / "catalog").product("gift-wrap")
            assert gift is not None and gift.price == Decimal("3.50")
            plan = plan_against(shop, state, tmp_path / "catalog")
            assert {c.action for c in plan.all_changes()} == {Action.ADOPT}
    finally:
        shop.close()


# -- property: for random small stores, import then plan is empty ------------------------------

_names = st.text(alphabet="abcdefghij", min_size=3, max_size=6)
_money = st.decimals(min_value=0, max_value=500, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def stores(draw: st.DrawFn) -> Catalog:
    count = draw(st.integers(min_value=1, max_value=5))
    brands = draw(st.lists(_names.map(str.title), max_size=3, unique_by=str.casefold))
    products: list[Product] = []
    for i in range(count):
        handle = f"item-{i}"
        active = draw(st.sampled_from([None, False]))
        price = draw(_money)
        fields: dict[str, object] = {
            "brand": draw(st.sampled_from([None, *brands])),
            "tags": tuple(sorted(draw(st.sets(st.sampled_from(["new", "sale", "eco"]))))) or None,
            "category": draw(
                st.sampled_from([None, ("Garden",), ("Home", "Kitchen"), ("Home", "Bath")])
            ),
        }
        if draw(st.booleans()):
            options = tuple(draw(st.sampled_from([("Size",), ("Size", "Colour")])))
            n = draw(st.integers(min_value=1, max_value=4))
            variants = tuple(
                Variant(
                    sku=f"I{i}-V{j}",
                    options=tuple((o, f"{o[0]}{j}") for o in options),
                    price=draw(st.sampled_from([None, draw(_money)])),
                    active=draw(st.sampled_from([None, False])),
                )
                for j in range(n)
            )
            products.append(
                Product(
                    handle=handle,
                    name=f"Item {i}",
                    price=price,
                    active=active,
                    options=options,
                    variants=variants,
                    **fields,  # type: ignore[arg-type]
                )
            )
        else:
            products.append(
                Product(
                    handle=handle,
                    name=f"Item {i}",
                    sku=f"I{i}",
                    price=price,
                    active=active,
                    **fields,  # type: ignore[arg-type]
                )
            )
    return Catalog.build(products=products)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(catalog=stores())
def test_for_random_stores_import_plans_only_adoption_and_apply_converges(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shop = Shop()
    try:
        shop.seed(catalog)
        out = tmp_path_factory.mktemp("catalog")
        with State(":memory:") as state:
            import_into(shop, state, out)
            imported = load_catalog(out)
            live = load_live(Cache(state))
            plan = plan_against(shop, state, out)
            assert {c.action for c in plan.all_changes()} <= {Action.ADOPT}
            assert plan.estimate.requests == 0
            shop.store.reset_stats()
            assert apply_plan(plan, shop.client, state, live=live, parallelism=1).ok
            assert shop.writes() == 0
            assert not plan_against(shop, state, out).has_changes
        assert {p.handle for p in imported.products} == {p.handle for p in catalog.products}
        for p in catalog.products:
            got = imported.product(p.handle)
            assert got is not None
            # Every sellable says what the store holds (the store is the truth, not the seed:
            # apply may create a family inactive as a whole when most variants are).
            rows = live.products[p.handle].rows
            assert [(v.sku, v.price, v.active is False) for v in got.sellables()] == [
                (sku, row.values.price, row.values.active is False)
                for sku, row in sorted(rows.items())
            ]
            assert [v.price for v in got.sellables()] == [
                v.price for v in sorted(p.sellables(), key=lambda v: v.sku)
            ]
    finally:
        shop.close()


def test_the_command_imports_the_embedded_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LIGHTSPEED_STORE", "LIGHTSPEED_TOKEN", "LIGHTSPEED_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".catalog").mkdir()
    embedded = Shop(path=tmp_path / ".catalog" / "sandbox.db", token="sandbox-token")
    embedded.seed(varied())
    embedded.close()

    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    code, _, err = run("import")
    assert code == 0, err
    assert "Imported 6 product(s) (7 variants)" in err and "API requests" in err
    first = snapshot(tmp_path / "catalog")
    assert "products/apparel-tops.yaml" in first

    code, out, err = run("plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["estimate"]["requests"] == 0
    assert {c["action"] for c in plan["changes"]} == {"adopt"}

    # Apply adopts everything without one write; the next plan is empty.
    code, _, err = run("apply", "--auto-approve")
    assert code == 0, err
    with State(tmp_path / ".catalog" / "state.db") as state:
        (last,) = Ledger(state).runs()
        assert (last.outcome, last.counts["writes"], last.counts["applied"]) == ("applied", 0, 13)
    code, _, err = run("plan", "--detailed-exitcode")
    assert code == 0, err

    code, _, err = run("import")
    assert code == 1 and "is not empty: pass --force" in err
    code, _, err = run("import", "--force")
    assert code == 0, err
    assert snapshot(tmp_path / "catalog") == first

    code, _, err = run("import", "--tax-mode", "inclusive")
    assert code == 64 and "--tax-mode only applies to --from-csv" in err
