"""The R-Series sandbox's rules beyond the recordings (lightspeed-rseries.md section 10)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from reconciler.cli.sandbox import sandbox as sandbox_group
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.rseries.sandbox import RSeriesStore

RSERIES_TOKEN = "rseries-token"  # as the rseries fixture in conftest.py
RSERIES_ACCOUNT = "100001"

A = f"/API/V3/Account/{RSERIES_ACCOUNT}"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def make_items(c: httpx.Client, n: int, prefix: str = "Thing") -> list[str]:
    return [
        ok(
            c.post(f"{A}/Item.json", json={"description": f"{prefix} {i:03}", "customSku": f"S{i}"})
        )["Item"]["itemID"]
        for i in range(n)
    ]


def rows(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = body.get(kind, [])
    return found if isinstance(found, list) else [found]


def test_paging_follows_next_and_previous(rseries_client: httpx.Client) -> None:
    ids = make_items(rseries_client, 7)
    page = ok(rseries_client.get(f"{A}/Item.json", params={"limit": "3", "customSku": "!=,S6"}))
    seen = [i["itemID"] for i in page["Item"]]
    assert page["@attributes"]["previous"] == ""
    pages = [page]
    while page["@attributes"]["next"]:
        assert "after=" in page["@attributes"]["next"] and "limit=3" in page["@attributes"]["next"]
        page = ok(rseries_client.get(page["@attributes"]["next"]))
        pages.append(page)
        seen += [i["itemID"] for i in rows(page, "Item")]
    assert seen == ids[:6] and len(pages) == 2
    back = ok(rseries_client.get(pages[1]["@attributes"]["previous"]))
    assert [i["itemID"] for i in back["Item"]] == ids[:3]
    assert back["@attributes"]["previous"] == ""
    # The last page holds three, exactly the limit: the store knows there is nothing after.
    assert pages[1]["@attributes"]["next"] == ""


def test_one_hit_is_an_object_none_is_no_key(rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 2)
    one = ok(rseries_client.get(f"{A}/Item.json", params={"customSku": "S1"}))
    assert isinstance(one["Item"], dict) and one["Item"]["customSku"] == "S1"
    none = ok(rseries_client.get(f"{A}/Item.json", params={"customSku": "nope"}))
    assert none == {"@attributes": {"next": "", "previous": ""}}


def test_sort_whitelist_descending_and_count(rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 4)
    desc = ok(rseries_client.get(f"{A}/Item.json", params={"sort": "-description", "limit": "2"}))
    assert [i["description"] for i in desc["Item"]] == ["Thing 003", "Thing 002"]
    rest = ok(rseries_client.get(desc["@attributes"]["next"]))
    assert [i["description"] for i in rest["Item"]] == ["Thing 001", "Thing 000"]
    refused = rseries_client.get(f"{A}/Item.json", params={"sort": "customSku"})
    assert refused.status_code == 400 and "sortable fields" in refused.json()["message"]
    assert ok(rseries_client.get(f"{A}/Item.json", params={"count": "1"})) == {
        "@attributes": {"count": "4"}
    }
    clash = rseries_client.get(f"{A}/Item.json", params={"count": "1", "limit": "5"})
    assert clash.status_code == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (">=,S2", None),  # text comparison
        ('IN,["S0","S3"]', ["S0", "S3"]),
        ("~,s%", ["S0", "S1", "S2", "S3"]),
        ("!~,%2", ["S0", "S1", "S3"]),
        ("!=,S1", ["S0", "S2", "S3"]),
    ],
)
def test_filter_operators(
    rseries_client: httpx.Client, value: str, expected: list[str] | None
) -> None:
    make_items(rseries_client, 4)
    body = ok(rseries_client.get(f"{A}/Item.json", params={"customSku": value}))
    got = [i["customSku"] for i in rows(body, "Item")]
    assert got == (expected if expected is not None else ["S2", "S3"])


def test_numeric_filters_compare_numbers(rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 12)
    body = ok(rseries_client.get(f"{A}/Item.json", params={"itemID": "><,9,11"}))
    assert [i["itemID"] for i in body["Item"]] == ["9", "10", "11"]
    body = ok(rseries_client.get(f"{A}/Item.json", params={"itemID": ">,10"}))
    assert [i["itemID"] for i in body["Item"]] == ["11", "12"]


def test_time_filters_and_the_raw_plus_trap(rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 2)
    body = ok(
        rseries_client.get(
            f"{A}/Item.json",
            params={"timeStamp": ">=,2000-01-01T00:00:00+00:00", "sort": "timeStamp"},
        )
    )
    assert len(body["Item"]) == 2
    future = ok(
        rseries_client.get(f"{A}/Item.json", params={"timeStamp": ">,2999-01-01T00:00:00Z"})
    )
    assert "Item" not in future
    # An unencoded + arrives as a space: the date has no zone and is refused.
    raw = rseries_client.get(f"{A}/Item.json?timeStamp=%3E%3D%2C2000-01-01T00:00:00+00:00")
    assert raw.status_code == 400 and "URL-encoded" in raw.json()["message"]


def test_unknown_filter_field_and_or_are_refused(rseries_client: httpx.Client) -> None:
    assert rseries_client.get(f"{A}/Item.json", params={"colour": "red"}).status_code == 400
    assert rseries_client.get(f"{A}/Item.json", params={"or": "a=1|b=2"}).status_code == 400


def test_limit_clamps_to_100(rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 101)
    body = ok(rseries_client.get(f"{A}/Item.json", params={"limit": "500"}))
    assert len(body["Item"]) == 100 and "limit=500" in body["@attributes"]["next"]


def test_archive_zeroes_stock_and_hides_from_queries(rseries_client: httpx.Client) -> None:
    (item,) = make_items(rseries_client, 1)
    archived = ok(rseries_client.delete(f"{A}/Item/{item}.json"))["Item"]
    assert archived["archived"] == "true" and "ItemShops" not in archived
    assert "Item" not in ok(rseries_client.get(f"{A}/Item.json"))
    assert rows(ok(rseries_client.get(f"{A}/Item.json", params={"archived": "only"})), "Item")
    assert rows(ok(rseries_client.get(f"{A}/Item.json", params={"archived": "true"})), "Item")
    read = ok(rseries_client.get(f"{A}/Item/{item}.json", params={"load_relations": "all"}))
    assert read["Item"]["archived"] == "true"
    assert all(s["qoh"] == "0" for s in read["Item"]["ItemShops"]["ItemShop"])
    # PUT cannot archive, but restores.
    ok(rseries_client.put(f"{A}/Item/{item}.json", json={"archived": "false"}))
    assert rows(ok(rseries_client.get(f"{A}/Item.json")), "Item")


def make_matrix(c: httpx.Client, set_id: str = "1", description: str = "Tee") -> str:
    body = {
        "description": description,
        "itemAttributeSetID": set_id,
        "defaultCost": 8,
        "Prices": {"ItemPrice": [{"amount": "25.00", "useTypeID": "1"}]},
    }
    return str(ok(c.post(f"{A}/ItemMatrix.json", json=body))["ItemMatrix"]["itemMatrixID"])


def variant(c: httpx.Client, matrix: str, sku: str, **attributes: str) -> httpx.Response:
    return c.post(
        f"{A}/Item.json",
        json={
            "customSku": sku,
            "itemMatrixID": matrix,
            "ItemAttributes": {"itemAttributeSetID": "1", **attributes},
        },
    )


def test_variants_join_the_matrix_and_inherit_its_defaults(rseries_client: httpx.Client) -> None:
    matrix = make_matrix(rseries_client)
    item = ok(variant(rseries_client, matrix, "T-W-S", attribute1="White", attribute2="S"))["Item"]
    assert item["description"] == "Tee White S" and item["defaultCost"] == "8"
    assert item["Prices"]["ItemPrice"][0] == {
        "amount": "25",
        "useTypeID": "1",
        "useType": "Default",
    }
    dup = variant(rseries_client, matrix, "T-W-S2", attribute1="white", attribute2="s")
    assert dup.status_code == 400 and "already has these attributes" in dup.json()["message"]
    ok(variant(rseries_client, matrix, "T-B-S", attribute1="Black", attribute2="S"))
    body = ok(rseries_client.get(f"{A}/ItemMatrix/{matrix}.json", params={"load_relations": "all"}))
    m = body["ItemMatrix"]
    assert m["attribute1Values"] == ["White", "Black"] and m["attribute2Values"] == "S"
    assert len(m["Items"]["Item"]) == 2 and m["ItemAttributeSet"]["name"] == "Color/Size"
    members = ok(rseries_client.get(f"{A}/Item.json", params={"itemMatrixID": matrix}))
    assert len(members["Item"]) == 2
    attrs = ok(
        rseries_client.get(
            f"{A}/Item/{item['itemID']}.json", params={"load_relations": '["ItemAttributes"]'}
        )
    )["Item"]["ItemAttributes"]
    assert attrs["attribute1"] == "White" and attrs["ItemAttributeSet"]["itemAttributeSetID"] == "1"


def test_size_only_set_uses_slot_two(rseries_client: httpx.Client) -> None:
    matrix = make_matrix(rseries_client, set_id="2")
    wrong = rseries_client.post(
        f"{A}/Item.json",
        json={
            "itemMatrixID": matrix,
            "ItemAttributes": {"itemAttributeSetID": "2", "attribute1": "S"},
        },
    )
    assert wrong.status_code == 400 and "no attribute 1" in wrong.json()["message"]


def test_matrix_delete_archives_its_items(rseries_client: httpx.Client) -> None:
    matrix = make_matrix(rseries_client)
    ok(variant(rseries_client, matrix, "A", attribute1="Red", attribute2="S"))
    ok(rseries_client.delete(f"{A}/ItemMatrix/{matrix}.json"))
    items = rows(ok(rseries_client.get(f"{A}/Item.json", params={"archived": "only"})), "Item")
    assert [i["customSku"] for i in items] == ["A"]


def test_matrix_needs_a_set_and_description(rseries_client: httpx.Client) -> None:
    no_set = rseries_client.post(f"{A}/ItemMatrix.json", json={"description": "Blue Onesie"})
    assert no_set.json()["message"].startswith("ItemMatrix not Created. You must set")
    no_name = rseries_client.post(f"{A}/ItemMatrix.json", json={"itemAttributeSetID": "1"})
    assert no_name.status_code == 400


def test_references_must_exist(rseries_client: httpx.Client) -> None:
    bad = rseries_client.post(f"{A}/Item.json", json={"description": "x", "categoryID": "99"})
    assert bad.status_code == 400 and "Category 99 does not exist" in bad.json()["message"]


def test_category_tree(rseries_client: httpx.Client) -> None:
    top = ok(rseries_client.post(f"{A}/Category.json", json={"name": "Apparel"}))["Category"]
    sub = ok(
        rseries_client.post(
            f"{A}/Category.json", json={"name": "Tops", "parentID": top["categoryID"]}
        )
    )["Category"]
    assert sub["fullPathName"] == "Apparel/Tops" and sub["nodeDepth"] == "1"
    ok(rseries_client.put(f"{A}/Category/{top['categoryID']}.json", json={"name": "Clothes"}))
    moved = ok(rseries_client.get(f"{A}/Category/{sub['categoryID']}.json"))["Category"]
    assert moved["fullPathName"] == "Clothes/Tops"
    refused = rseries_client.delete(f"{A}/Category/{top['categoryID']}.json")
    assert refused.status_code == 400 and "child categories" in refused.json()["message"]
    loop = rseries_client.put(
        f"{A}/Category/{top['categoryID']}.json", json={"parentID": sub["categoryID"]}
    )
    assert loop.status_code == 400
    by_left = ok(rseries_client.get(f"{A}/Category.json", params={"sort": "-leftNode"}))
    assert [c["name"] for c in by_left["Category"]] == ["Tops", "Clothes"]
    ok(rseries_client.delete(f"{A}/Category/{sub['categoryID']}.json"))
    assert rseries_client.get(f"{A}/Category/{sub['categoryID']}.json").status_code == 404


def test_manufacturer_and_attribute_set_deletes_are_not_allowed(
    rseries_client: httpx.Client,
) -> None:
    made = ok(rseries_client.post(f"{A}/Manufacturer.json", json={"name": "Acme"}))
    ident = made["Manufacturer"]["manufacturerID"]
    refused = rseries_client.delete(f"{A}/Manufacturer/{ident}.json")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, POST, PUT"
    assert rseries_client.delete(f"{A}/ItemAttributeSet/1.json").status_code == 405
    assert rseries_client.put(f"{A}/ItemAttributeSet/1.json", json={"name": "x"}).status_code == 400
    custom = ok(
        rseries_client.post(
            f"{A}/ItemAttributeSet.json",
            json={"name": "Fit/Size", "attributeName1": "Fit", "attributeName2": "Size"},
        )
    )["ItemAttributeSet"]
    assert custom["itemAttributeSetID"] == "5" and custom["system"] == "false"


def test_vendor_delete_archives(rseries_client: httpx.Client) -> None:
    v = ok(rseries_client.post(f"{A}/Vendor.json", json={"name": "Acme Supply"}))["Vendor"]
    gone = ok(rseries_client.delete(f"{A}/Vendor/{v['vendorID']}.json"))["Vendor"]
    assert gone["archived"] == "true"
    assert "Vendor" not in ok(rseries_client.get(f"{A}/Vendor.json"))


def test_tags_are_normalised_replace_the_set_and_delete_hard(rseries_client: httpx.Client) -> None:
    (item,) = make_items(rseries_client, 1)
    path = f"{A}/Item/{item}.json"
    ok(rseries_client.put(path, json={"Tags": {"tag": ["Summer Sale", "cotton"]}}))
    tags = ok(rseries_client.get(path, params={"load_relations": '["TagRelations"]'}))
    assert tags["Item"]["Tags"] == {"tag": ["summersale", "cotton"]}
    ok(rseries_client.put(path, json={"Tags": {"tag": "cotton"}}))
    assert ok(rseries_client.get(path, params={"load_relations": "all"}))["Item"]["Tags"] == {
        "tag": "cotton"
    }
    stamp = ok(rseries_client.get(path))["Item"]["timeStamp"]
    listed = ok(rseries_client.get(f"{A}/Tag.json", params={"name": "cotton"}))["Tag"]
    assert ok(rseries_client.post(f"{A}/Tag.json", json={"name": "Cot Ton"}))["Tag"] == listed
    ok(rseries_client.delete(f"{A}/Tag/{listed['tagID']}.json"))
    after = ok(rseries_client.get(path, params={"load_relations": "all"}))["Item"]
    assert "Tags" not in after and after["timeStamp"] == stamp  # a blind spot, as documented


def test_images_upload_serve_order_and_delete(rseries_client: httpx.Client) -> None:
    matrix = make_matrix(rseries_client)
    uploaded = []
    for n, content in enumerate([b"GIF89a-one", b"GIF89a-two"]):
        answer = rseries_client.post(
            f"{A}/ItemMatrix/{matrix}/Image.json",
            files={"image": (f"{n}.gif", content, "image/gif")},
            data={"data": json.dumps({"description": f"view {n}", "ordering": 1 - n})},
        )
        uploaded.append(ok(answer)["Image"])
    image = uploaded[0]
    assert image["size"] == "10" and image["itemMatrixID"] == matrix and image["itemID"] == "0"
    assert image["baseImageURL"].endswith("/")
    assert rseries_client.get(image["baseImageURL"] + image["publicID"] + ".jpg").content == (
        b"GIF89a-one"
    )
    listed = ok(
        rseries_client.get(f"{A}/ItemMatrix/{matrix}.json", params={"load_relations": "all"})
    )
    assert [i["description"] for i in listed["ItemMatrix"]["Images"]["Image"]] == [
        "view 1",
        "view 0",
    ]
    ok(rseries_client.delete(f"{A}/Image/{image['imageID']}.json"))
    assert rseries_client.get(f"{A}/Image/{image['imageID']}.json").status_code == 404
    plain = rseries_client.post(f"{A}/Item/1/Image.json", json={"x": 1})
    assert plain.status_code in {400, 404}


def test_wrong_account_and_unknown_ids_are_404(rseries_client: httpx.Client) -> None:
    assert rseries_client.get("/API/V3/Account/999/Item.json").status_code == 404
    missing = rseries_client.get(f"{A}/Item/12345.json")
    assert missing.status_code == 404 and missing.json()["httpCode"] == "404"
    assert rseries_client.get(f"{A}/Nothing.json").status_code == 404


def test_bucket_costs_headers_and_429() -> None:
    now = [1000.0]
    store = RSeriesStore(token="t", rate_limit="20/2", bucket_clock=lambda: now[0])
    with httpx.Client(
        transport=SandboxTransport(store),
        base_url="http://r.invalid",
        headers={"Authorization": "Bearer t"},
    ) as c:
        first = c.post(f"{A}/Category.json", json={"name": "A"})
        assert first.headers["X-LS-API-Request-Cost"] == "10"
        assert first.headers["X-LS-API-Bucket-Level"] == "10/20"
        assert first.headers["X-LS-API-Drip-Rate"] == "2"
        counted = c.get(f"{A}/Item.json", params={"count": "1"})
        assert counted.headers["X-LS-API-Bucket-Level"] == "20/20"  # the overflowing one is served
        refused = c.get(f"{A}/Item.json")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert refused.json()["message"] == "Rate limit exceeded."
        now[0] += 0.5  # drained to 19: below the size again
        loaded = c.get(f"{A}/Item.json", params={"load_relations": '["ItemShops","Category"]'})
        assert loaded.headers["X-LS-API-Request-Cost"] == "1.6"  # (0.2 + 0.1) x 2 on a query
        single = c.get(f"{A}/Category/1.json", params={"load_relations": "[]"})
        assert single.status_code == 429
        now[0] += 10
        body = {"description": "x", "Prices": {"ItemPrice": [{"amount": 1, "useTypeID": 1}]}}
        assert c.post(f"{A}/Item.json", json=body).headers["X-LS-API-Request-Cost"] == "1.5"
    stats = store.stats()
    assert stats["rate_limited"] == 2 and stats["requests"]["total"] == 6
    store.close()


def test_token_endpoint_rotates_refresh_tokens(rseries: RSeriesStore) -> None:
    with httpx.Client(transport=SandboxTransport(rseries), base_url="http://r.invalid") as c:
        form = {
            "grant_type": "refresh_token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "refresh_token": "sandbox-refresh-token",
        }
        first = ok(c.post("/auth/oauth/token", data=form))
        assert first["token_type"] == "Bearer" and first["expires_in"] == 3600
        # Until the new access token is used, the old refresh token still works.
        second = ok(c.post("/auth/oauth/token", data=form))
        bearer = {"Authorization": f"Bearer {second['access_token']}"}
        assert c.get("/API/V3/Account.json", headers=bearer).status_code == 200
        dead = c.post("/auth/oauth/token", data=form)
        assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
        third = ok(
            c.post("/auth/oauth/token", data={**form, "refresh_token": second["refresh_token"]})
        )
        assert third["refresh_token"] != second["refresh_token"]
        wrong = c.post("/auth/oauth/token", data={**form, "client_secret": "nope"})
        assert wrong.status_code == 401
        code = c.post("/auth/oauth/token", json={**form, "grant_type": "authorization_code"})
        assert code.status_code == 400
    by_route = rseries.stats()["requests"]["by_route"]
    assert by_route["POST /auth/oauth/token"] == 6


def test_faults_stats_and_reset(rseries: RSeriesStore, rseries_client: httpx.Client) -> None:
    make_items(rseries_client, 1)
    assert ok(rseries_client.put("/_sandbox/faults", json={"fault_rate": 1}))["fault_rate"] == 1
    failed = rseries_client.get(f"{A}/Item.json")
    assert failed.status_code in {500, 502, 503} and failed.json()["httpCode"] == str(
        failed.status_code
    )
    ok(rseries_client.put("/_sandbox/faults", json={"fault_rate": 0, "timeout_rate": 1}))
    with pytest.raises(httpx.ReadTimeout):
        rseries_client.post(f"{A}/Item.json", json={"description": "committed"})
    ok(rseries_client.put("/_sandbox/faults", json={"timeout_rate": 0, "rate_limit": "90/1"}))
    assert (
        rseries_client.get(f"{A}/Item.json", params={"customSku": ""}).headers[
            "X-LS-API-Bucket-Level"
        ]
        == "1/90"
    )
    bad = rseries_client.put("/_sandbox/faults", json={"rate_limit": "lots", "nope": 1})
    assert bad.status_code == 400
    stats = ok(rseries_client.get("/_sandbox/stats"))
    assert stats["requests"]["by_route"] == {
        "GET /API/V3/Account/{accountID}/Item.json": 2,
        "POST /API/V3/Account/{accountID}/Item.json": 2,
    }
    assert stats["faults_injected"] == 2
    assert ok(rseries_client.post("/_sandbox/stats/reset"))["requests"]["total"] == 0
    ok(rseries_client.post("/_sandbox/reset"))
    assert ok(rseries_client.get(f"{A}/Item.json", params={"count": "1"})) == {
        "@attributes": {"count": "0"}
    }
    assert ok(rseries_client.get(f"{A}/ItemAttributeSet.json", params={"count": "1"})) == {
        "@attributes": {"count": "4"}
    }


def test_served_over_a_socket(rseries: RSeriesStore) -> None:
    with serve_in_thread(rseries) as url:
        headers = {"Authorization": f"Bearer {RSERIES_TOKEN}"}
        account = httpx.get(f"{url}/API/V3/Account.json", headers=headers).json()
        assert account["Account"]["accountID"] == RSERIES_ACCOUNT
        made = httpx.post(f"{url}{A}/Item.json", json={"description": "x"}, headers=headers)
        assert made.status_code == 200
        assert httpx.get(f"{url}{A}/Item.json").status_code == 401


def test_cli_serves_an_rseries_store(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from reconciler.cli.sandbox import sandbox; sandbox()",
            "serve",
            "--platform",
            "rseries",
            "--port",
            "0",
            "--db",
            str(tmp_path / "r.db"),
            "--token",
            "t0ken",
            "--rate-limit",
            "30/2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "Sandbox R-Series store" in banner
        assert process.stderr.readline().strip() == "Bearer token: t0ken"
        base_url = banner.split(" at ")[1].split()[0]
        answer = httpx.get(
            f"{base_url}/API/V3/Account.json", headers={"Authorization": "Bearer t0ken"}
        )
        assert answer.headers["X-LS-API-Bucket-Level"] == "1/30"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert (tmp_path / "r.db").exists()


def test_cli_checks_rate_limits_and_options_per_platform() -> None:
    runner = CliRunner()
    bad = runner.invoke(
        sandbox_group, ["serve", "--platform", "rseries", "--rate-limit", "xseries"]
    )
    assert bad.exit_code == 2 and "rseries, off or SIZE/DRIPS_PER_SECOND" in bad.output
    mixed = runner.invoke(sandbox_group, ["serve", "--platform", "rseries", "--tax-exclusive"])
    assert mixed.exit_code == 2 and "X-Series sandbox only" in mixed.output
    other = runner.invoke(sandbox_group, ["serve", "--refresh-token", "r"])
    assert other.exit_code == 2 and "R-Series sandbox only" in other.output


def test_burst_and_latency_faults(rseries: RSeriesStore, rseries_client: httpx.Client) -> None:
    rseries.set_faults(burst_429_rate=1.0, burst_seconds=5)
    burst = rseries_client.get(f"{A}/Item.json")
    assert burst.status_code == 429 and burst.headers["X-LS-API-RateLimit-Type"] == "burst"
    assert burst.headers["Retry-After"] == "5"
    rseries.set_faults(burst_429_rate=0.0, latency_ms=40)
    rseries.traffic.reset()  # ends the burst
    started = time.monotonic()
    assert rseries_client.get(f"{A}/Item.json").status_code == 200
    assert time.monotonic() - started >= 0.04
    assert rseries.stats()["faults_injected"] == 0  # the reset forgot the counted burst
