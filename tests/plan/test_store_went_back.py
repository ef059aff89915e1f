"""A store that went backwards behind the same address (restored, reset, replaced) is read
again in full, with a notice, instead of being planned from the cache (issue 12, point 5)."""

from __future__ import annotations

import httpx

from reconciler.live import Live
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.refresh import load_live, refresh
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.fakes import TOKEN


def _fill(client: Client, n: int, prefix: str) -> None:
    for i in range(n):
        client.create_brand(f"{prefix} brand {i}")
        client.create_tag(f"{prefix}-tag-{i}")
        client.create_supplier(f"{prefix} supplier {i}")
        client.create_product(
            {"name": f"{prefix} mug {i}", "sku": f"{prefix}-MUG-{i}", "price_including_tax": 5}
        )


def _names(live: Live) -> set[str]:
    return {p.product.name for p in live.products.values()}


def test_a_reset_store_behind_the_same_url_is_read_again(store: SandboxStore) -> None:
    with (
        serve_in_thread(store) as url,
        Client(url, TOKEN) as client,
        State(":memory:") as state,
    ):
        cache = Cache(state)
        _fill(client, 3, "old")
        refresh(client, cache)
        assert "old mug 2" in _names(load_live(cache))
        notes: list[str] = []
        warm = refresh(client, cache, on_progress=notes.append)
        assert notes == [] and all(k.received == 0 for k in warm.kinds)
        httpx.post(f"{url}/_sandbox/reset").raise_for_status()
        report = refresh(client, cache, on_progress=notes.append)
        assert any("restored, reset or replaced" in n for n in notes), notes
        assert {k.kind: k.mode for k in report.kinds}["product"] == "full"
        live = load_live(cache)
        assert not any(n.startswith("old") for n in _names(live))
        assert not any(k.startswith("old") for k in live.names.brands)


def test_a_replaced_store_that_has_grown_past_our_cursor_is_read_again(tmp_path: object) -> None:
    """Another store at the same address whose versions already exceed ours: the feed has
    versions above the cursor, but not the object the cursor stands on."""
    first = SandboxStore(":memory:", token=TOKEN, rate_limit=None, seed=1)
    second = SandboxStore(":memory:", token=TOKEN, rate_limit=None, seed=2)
    with State(":memory:") as state:
        cache = Cache(state)
        with Client("http://same.test", TOKEN, transport=SandboxTransport(first)) as a:
            _fill(a, 2, "first")
            refresh(a, cache)
        with Client("http://same.test", TOKEN, transport=SandboxTransport(second)) as b:
            _fill(b, 12, "second")
            notes: list[str] = []
            refresh(b, cache, on_progress=notes.append)
        assert any("restored, reset or replaced" in n for n in notes), notes
        names = _names(load_live(cache))
        assert "second mug 11" in names and not any(n.startswith("first") for n in names)
    first.close()
    second.close()


def test_a_warm_refresh_costs_what_it_did(store: SandboxStore, client: Client) -> None:
    """Starting one version early costs no request and no object counted as changed."""
    with State(":memory:") as state:
        cache = Cache(state)
        _fill(client, 3, "x")
        refresh(client, cache)
        warm = refresh(client, cache)
        assert warm.requests == 6
        assert all(k.received == 0 for k in warm.kinds if k.mode == "changes")
        client.create_brand("late")
        after = refresh(client, cache)
        assert after.requests == 6
        assert {k.kind: k.received for k in after.kinds}["brand"] == 1
        assert "late" in load_live(cache).names.brands
