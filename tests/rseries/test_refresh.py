"""The R-Series change feed, with every request counted by the sandbox's /_sandbox/stats: a cold
read pages everything once, a no-op read costs one request per kind, and what changes out of
band (an edit, even within the second last read; an archive; a deleted category or tag) shows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconciler.errors import ConfigError
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.refresh import KINDS, feed_time, load_live, refresh
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state.cache import Cache

from .helpers import CATALOG, Frozen, seed

ITEM_ROUTE = "GET /API/V3/Account/{accountID}/Item.json"


@pytest.fixture
def handles(rs_client: RSeriesClient) -> dict[str, str]:
    return seed(rs_client, CATALOG)


def sent(store: RSeriesStore) -> dict[str, int]:
    """Requests the store answered since the last reset, by route; then reset."""
    by_route = dict(store.stats()["requests"]["by_route"])
    store.reset_stats()
    return by_route


def one_each() -> dict[str, int]:
    return {f"GET /API/V3/Account/{{accountID}}/{kind}.json": 1 for kind in KINDS}


def test_cold_then_no_op_read(
    rs_client: RSeriesClient, cache: Cache, timed_rseries: RSeriesStore, handles: dict[str, str]
) -> None:
    timed_rseries.reset_stats()
    cold = refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each() and cold.requests == 8 and cold.full
    assert {k.kind: k.received for k in cold.kinds}["Item"] == 7
    generation = cache.generation()
    again = refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each() and again.requests == 8 and not again.full
    # Everything the feed sent back was the last second's records, unchanged: no news.
    assert all(k.received == 0 for k in again.kinds if k.mode == "changes")
    assert cache.generation() == generation  # nothing planning reads changed


def test_cold_read_pages_everything_once(
    rs_client: RSeriesClient, cache: Cache, timed_rseries: RSeriesStore, clock: Frozen
) -> None:
    for n in range(205):
        clock.now += 1
        rs_client.create("Item", {"description": f"Item {n}", "customSku": f"S{n}"})
    timed_rseries.reset_stats()
    refresh(rs_client, cache)
    assert sent(timed_rseries) == {**one_each(), ITEM_ROUTE: 3}  # 100 + 100 + 5
    assert len(load_live(cache).products) == 205
    refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()  # only the last second's item comes back


def test_an_item_edited_out_of_band_shows_up_even_within_the_same_second(
    rs_client: RSeriesClient, cache: Cache, timed_rseries: RSeriesStore, handles: dict[str, str]
) -> None:
    refresh(rs_client, cache)
    tee_m = load_live(cache, handles=handles).products["classic-tee"].rows["TEE-M-BLK"]
    body = {"Prices": {"ItemPrice": [{"amount": "29", "useTypeID": "1"}]}}
    rs_client.update("Item", tee_m.id, body)  # same second as everything read so far
    timed_rseries.reset_stats()
    report = refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    assert {k.kind: k.received for k in report.kinds}["Item"] > 0
    live = load_live(cache, handles=handles)
    assert live.products["classic-tee"].rows["TEE-M-BLK"].values.price == Decimal("29.00")


def test_a_later_edit_is_asked_for_from_the_last_second_seen(
    rs_client: RSeriesClient,
    cache: Cache,
    timed_rseries: RSeriesStore,
    clock: Frozen,
    handles: dict[str, str],
) -> None:
    refresh(rs_client, cache)
    cursor = cache.cursor("Item")
    # The cursor is the newest record's `timeStamp` text in the one canonical ISO form.
    assert cursor is not None and cursor[0] == "2024-05-01T10:00:00+00:00"
    clock.now += 5
    gift = load_live(cache, handles=handles).products["gift-wrap"]
    rs_client.update("Item", gift.remote_id, {"description": "Gift Wrap Deluxe"})
    timed_rseries.reset_stats()
    report = refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    assert {k.kind: k.received for k in report.kinds}["Item"] == 1  # only the edited one
    gift = load_live(cache, handles=handles).products["gift-wrap"]
    assert gift.product.name == "Gift Wrap Deluxe"
    # A plan shows the live version as the time the record last changed.
    assert gift.version == "2024-05-01T10:00:05+00:00"
    assert cache.cursor("Item") == ("2024-05-01T10:00:05+00:00", report.refreshed_at)
    assert feed_time("2024-05-01T10:00:05+00:00") == ">=,2024-05-01T10:00:05+00:00"


def test_an_archived_item_shows_up_inactive(
    rs_client: RSeriesClient,
    cache: Cache,
    timed_rseries: RSeriesStore,
    clock: Frozen,
    handles: dict[str, str],
) -> None:
    refresh(rs_client, cache)
    clock.now += 1
    gift = load_live(cache, handles=handles).products["gift-wrap"]
    rs_client.delete("Item", gift.remote_id)  # archives (and zeroes its stock)
    timed_rseries.reset_stats()
    refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    found = load_live(cache, handles=handles).products["gift-wrap"]
    assert found.product.active is False and found.rows["GIFT-WRAP"].values.active is False


def test_a_deleted_category_and_tag_are_noticed(
    rs_client: RSeriesClient,
    cache: Cache,
    timed_rseries: RSeriesStore,
    clock: Frozen,
    handles: dict[str, str],
) -> None:
    refresh(rs_client, cache)
    live = load_live(cache, handles=handles)
    extras = live.names.categories[("extras",)]
    assert live.products["gift-wrap"].product.category == ("Extras",)
    clock.now += 1
    # Another matrix edited later: the tee's matrix is then no longer among the last second's.
    rs_client.update("ItemMatrix", live.products["socks"].remote_id, {"description": "Socks"})
    refresh(rs_client, cache)
    clock.now += 1
    # Hard deletes leave no trace in any feed; deleting a tag untags the matrix without
    # touching its time stamp (the documented blind spot): only the full reads see them.
    rs_client.delete("Category", extras.id)
    rs_client.delete("Tag", live.names.tags["cotton"].id)
    timed_rseries.reset_stats()
    report = refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    assert {k.kind: k.received for k in report.kinds}["ItemMatrix"] == 0
    live = load_live(cache, handles=handles, tag_spellings=["Summer Sale"])
    assert ("extras",) not in live.names.categories and "cotton" not in live.names.tags
    assert live.products["gift-wrap"].product.category is None
    assert live.products["classic-tee"].product.tags == ("Summer Sale",)


def test_refresh_off_sends_nothing_and_needs_a_cache(
    rs_client: RSeriesClient, cache: Cache, timed_rseries: RSeriesStore, handles: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="never been read"):
        refresh(rs_client, cache, mode="off")
    refresh(rs_client, cache)
    timed_rseries.reset_stats()
    report = refresh(rs_client, cache, mode="off")
    assert sent(timed_rseries) == {} and report.requests == 0
    assert len(load_live(cache, handles=handles).products) == len(CATALOG.products)


def test_images_added_and_deleted_show_in_their_order(
    rs_client: RSeriesClient,
    cache: Cache,
    timed_rseries: RSeriesStore,
    clock: Frozen,
    handles: dict[str, str],
) -> None:
    refresh(rs_client, cache)
    tee = load_live(cache, handles=handles).products["classic-tee"]
    assert tee.image_ids == ()
    made = [
        rs_client.upload_image(
            "ItemMatrix",
            tee.remote_id,
            filename=f"{n}.png",
            content=b"\x89PNG" + bytes([n]),
            media_type="image/png",
            ordering=order,
        )
        for n, order in ((1, 1), (2, 0))
    ]
    timed_rseries.reset_stats()
    refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    tee = load_live(cache, handles=handles).products["classic-tee"]
    assert tee.image_ids == (str(made[1]["imageID"]), str(made[0]["imageID"]))  # by ordering
    clock.now += 1
    rs_client.delete("Image", made[1]["imageID"])  # a hard delete: no feed shows it
    timed_rseries.reset_stats()
    refresh(rs_client, cache)
    assert sent(timed_rseries) == one_each()
    tee = load_live(cache, handles=handles).products["classic-tee"]
    assert tee.image_ids == (str(made[0]["imageID"]),)
