"""The R-Series provider: registered like X-Series, its target from the environment (secrets
never shown), the embedded sandbox beside the state file, and its connection (refresh, the
store's bucket as facts, `Live` keyed by the catalog's handles)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reconciler import providers
from reconciler.errors import ConfigError
from reconciler.live import CatalogKeys
from reconciler.model import Catalog, Variant
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.provider import PROVIDER, SANDBOX
from reconciler.providers.rseries.refresh import StoreFacts, store_facts
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.providers.rseries.target import (
    API_BASE,
    EMBEDDED_SANDBOX_TOKEN,
    RSeriesTarget,
    rseries_target,
)
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.conftest import RSERIES_TOKEN

from .helpers import CATALOG, product, seed

SECRETS = {
    "LIGHTSPEED_TOKEN": "acc3ss-SECRET",
    "LIGHTSPEED_CLIENT_ID": "client-1",
    "LIGHTSPEED_CLIENT_SECRET": "cl1ent-SECRET",
    "LIGHTSPEED_REFRESH_TOKEN": "r3fresh-SECRET",
}


def test_registered_by_name_with_its_sandbox() -> None:
    assert providers.get("rseries") is PROVIDER
    assert providers.from_environ({"LIGHTSPEED_PLATFORM": "RSeries "}) is PROVIDER
    assert providers.sandbox("rseries") is SANDBOX is PROVIDER.sandbox()
    assert PROVIDER.limits.money_places == 2 and not PROVIDER.limits.has_handles
    assert PROVIDER.limits.delete_means == "archive"
    assert 8 not in PROVIDER.limits.barcode_lengths


def test_nothing_set_is_the_embedded_sandbox_beside_the_state_file(tmp_path: Path) -> None:
    target = rseries_target({}, sandbox_db=tmp_path / "rseries-sandbox.db")
    assert target.sandbox_db == tmp_path / "rseries-sandbox.db"
    assert target.access_token == EMBEDDED_SANDBOX_TOKEN
    assert "embedded R-Series sandbox" in target.label


def test_a_served_sandbox_or_the_api_with_an_access_token(tmp_path: Path) -> None:
    served = rseries_target(
        {"LIGHTSPEED_BASE_URL": "http://127.0.0.1:8787/", "LIGHTSPEED_TOKEN": "t"},
        sandbox_db=tmp_path / "x.db",
    )
    assert served.base_url == "http://127.0.0.1:8787" and served.sandbox_db is None
    assert served.token_url == "http://127.0.0.1:8787/auth/oauth/token"
    assert served.account_id is None and served.token_file is None
    real = rseries_target(
        {"LIGHTSPEED_TOKEN": "t", "LIGHTSPEED_ACCOUNT_ID": "120645"}, sandbox_db=tmp_path / "x"
    )
    assert real.base_url == API_BASE and real.account_id == "120645"
    assert real.token_url.startswith("https://cloud.lightspeedapp.com/")
    assert real.label == "R-Series account 120645 (api.lightspeedapp.com)"


def test_the_refresh_flow_keeps_rotated_tokens_beside_the_state_not_in_it(
    tmp_path: Path,
) -> None:
    trio = {k: v for k, v in SECRETS.items() if k != "LIGHTSPEED_TOKEN"}
    target = rseries_target(trio, sandbox_db=tmp_path / ".catalog" / "rseries-sandbox.db")
    assert target.refreshes and target.token_file == tmp_path / ".catalog" / "rseries-tokens.json"
    chosen = rseries_target(
        {**trio, "LIGHTSPEED_TOKEN_FILE": str(tmp_path / "keep.json")}, sandbox_db=tmp_path / "x"
    )
    assert chosen.token_file == tmp_path / "keep.json"


def test_secrets_are_in_no_repr_and_no_label(tmp_path: Path) -> None:
    target = rseries_target(SECRETS, sandbox_db=tmp_path / "x.db")
    shown = repr(target) + target.label + str(target)
    for name in ("LIGHTSPEED_TOKEN", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN"):
        assert SECRETS[name] not in shown
    assert set(target.secrets()) == {
        SECRETS[k]
        for k in ("LIGHTSPEED_TOKEN", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN")
    }


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"LIGHTSPEED_CLIENT_ID": "c"}, "LIGHTSPEED_CLIENT_SECRET and LIGHTSPEED_REFRESH_TOKEN"),
        ({"LIGHTSPEED_ACCOUNT_ID": "1"}, "No R-Series credentials"),
        ({"LIGHTSPEED_STORE": "boutique"}, "No R-Series credentials for store boutique"),
        ({"LIGHTSPEED_TOKEN": "t", "LIGHTSPEED_ACCOUNT_ID": "acme"}, "not an account number"),
        ({"LIGHTSPEED_TOKEN": "t", "LIGHTSPEED_BASE_URL": "ftp://x"}, r"not a valid http\(s\) URL"),
        ({"LIGHTSPEED_TOKEN": "a b"}, "LIGHTSPEED_TOKEN holds a space"),
    ],
)
def test_misconfiguration_is_one_sentence(
    environ: dict[str, str], says: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=says) as raised:
        rseries_target(environ, sandbox_db=tmp_path / "x.db")
    assert "a b" not in str(raised.value)


def _embedded(tmp_path: Path) -> RSeriesTarget:
    return PROVIDER.target({}, sandbox_db=tmp_path / "rseries-sandbox.db")


def test_the_embedded_sandbox_is_created_and_said_once(tmp_path: Path) -> None:
    said: list[str] = []
    with PROVIDER.connect(_embedded(tmp_path), say=said.append) as client:
        assert client.platform == "rseries"
        assert client.account_id() == "100001"
        assert client.identity.startswith("embedded-rseries-sandbox:")
    assert (tmp_path / "rseries-sandbox.db").exists()
    assert len(said) == 1 and "embedded R-Series sandbox" in said[0]


def test_a_recreated_embedded_sandbox_is_another_store(tmp_path: Path) -> None:
    with PROVIDER.connect(_embedded(tmp_path)) as client:
        first = client.identity
    with PROVIDER.connect(_embedded(tmp_path)) as client:
        assert client.identity == first  # the same file, the same store
    (tmp_path / "rseries-sandbox.db").unlink()
    with PROVIDER.connect(_embedded(tmp_path)) as client:
        assert client.identity != first


def test_connects_to_a_served_sandbox_over_a_socket(rseries_url: str, tmp_path: Path) -> None:
    target = PROVIDER.target(
        {"LIGHTSPEED_BASE_URL": rseries_url, "LIGHTSPEED_TOKEN": RSERIES_TOKEN},
        sandbox_db=tmp_path / "x.db",
    )
    with PROVIDER.connect(target) as client, State(tmp_path / "state.db") as state:
        report = client.refresh(Cache(state))
        assert report.full and client.account_id() == "100001"  # discovered once
        assert client.identity == f"rseries:{rseries_url}/100001"


def test_facts_are_the_bucket_the_store_reported(tmp_path: Path) -> None:
    store = RSeriesStore(token=RSERIES_TOKEN, rate_limit="120/3")
    target = RSeriesTarget(base_url="http://r.invalid", label="r", access_token=RSERIES_TOKEN)
    with (
        RSeriesClient(
            target.base_url,
            auth=_auth(),
            transport=SANDBOX.transport(store),
        ) as client,
        State(tmp_path / "state.db") as state,
    ):
        cache = Cache(state)
        assert client.facts(cache) == StoreFacts()  # nothing reported yet: the published one
        client.refresh(cache)
        facts = store_facts(cache)
        assert (facts.bucket_size, facts.drip_per_second) == (120.0, 3.0)
        assert (facts.rate_limit, facts.window_seconds) == (120, 40.0)
    store.close()


def _auth() -> object:
    from reconciler.providers.rseries.auth import OAuth

    return OAuth(token_url="http://r.invalid/auth/oauth/token", access_token=RSERIES_TOKEN)


def test_live_keys_families_by_the_catalogs_handles_and_spells_its_tags(
    rs_client: RSeriesClient, cache: Cache
) -> None:
    renamed = Catalog.build(
        products=[
            p.__class__(**{**p.__dict__, "handle": f"my-{p.handle}"}) for p in CATALOG.products
        ],
        tags=CATALOG.tags,
    )
    seed(rs_client, CATALOG)
    rs_client.refresh(cache)
    bare = rs_client.live(cache)
    assert "my-classic-tee" not in bare.products
    keyed = rs_client.live(cache, keys=CatalogKeys.of(renamed))
    assert {p.handle for p in renamed.products} <= set(keyed.products)
    tee = keyed.products["my-classic-tee"].product
    assert tee.tags == ("cotton", "Summer Sale")  # the store keeps "summersale"


def test_a_family_found_by_exact_description_when_no_sku_is_known(
    rs_client: RSeriesClient, cache: Cache
) -> None:
    # An apply that made the matrix and lost the answer before any item: found by its name.
    rs_client.create("ItemMatrix", {"description": "Rain Coat", "itemAttributeSetID": "2"})
    rs_client.create("ItemMatrix", {"description": "rain coat", "itemAttributeSetID": "2"})
    coat = product(
        "coat",
        name="Rain Coat",
        price=Decimal("80.00"),
        options=("Size",),
        variants=(Variant(sku="COAT-M", options=(("Size", "M"),)),),
    )
    rs_client.refresh(cache)
    live = rs_client.live(cache, keys=CatalogKeys.of(Catalog.build(products=[coat])))
    assert live.products["coat"].product.name == "Rain Coat"  # exact: not "rain coat"
    assert sum(1 for p in live.products.values() if p.product.name == "rain coat") == 1


def test_a_managed_family_keeps_its_handle_after_it_leaves_the_catalog(
    rs_client: RSeriesClient, cache: Cache
) -> None:
    class Row:
        def __init__(self, remote_id: str, applied: dict[str, object]) -> None:
            self.remote_id, self.applied = remote_id, applied

    handles = seed(rs_client, CATALOG)
    rs_client.refresh(cache)
    live = rs_client.live(cache, keys=CatalogKeys(handles=handles))
    tee, gift = live.products["classic-tee"], live.products["gift-wrap"]
    managed = {
        "old-tee": Row(tee.remote_id, {"name": "Classic Tee", "options": ["Color", "Size"]}),
        "old-gift": Row(gift.remote_id, {"name": "x", "sku": gift.product.sku}),
    }
    dropped = rs_client.live(cache, keys=CatalogKeys.of(None, managed))
    assert dropped.products["old-tee"].remote_id == tee.remote_id
    assert dropped.products["old-gift"].remote_id == gift.remote_id
