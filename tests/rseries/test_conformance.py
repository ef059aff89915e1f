"""The R-Series sandbox answers the recorded requests (../shared/reference/rseries) with the
recorded statuses, error bodies and shapes: the same keys, objects where one record was
recorded, arrays where several were, every scalar a string. V3 differences per the reference
README: lists carry `next`/`previous` instead of `count/offset/limit`, so a recorded offset page
is reached by following `next`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.rseries.sandbox import RSeriesStore

from .cassettes import ID_FIELDS, REFERENCE, Exchange, assert_same_shape, cassettes, load

TOKEN = "conformance-token"
ACCOUNT = "100001"
BUCKET_HEADER = re.compile(r"^\d+(\.\d+)?/\d+(\.\d+)?$")

# Replayed in order on a fresh store: creates, updates, deletes, refusals, account reads.
WRITES = [
    "lightspeed_pos/accounts_oauth.yml",
    "lightspeed_pos/accounts_oauth_with_refresh.yml",
    "lightspeed_pos/request_throttler/bucket_limits.yml",
    "lightspeed_pos/account/items/create.yml",
    "lightspeed_pos/account/items/create_invalid.yml",
    "lightspeed_pos/account/items/update.yml",
    "lightspeed_pos/account/items/update_invalid.yml",
    "lightspeed_pos/account/items/archive.yml",
    "lightspeed_pos/account/categories/create.yml",
    "lightspeed_pos/account/categories/create_invalid.yml",
    "lightspeed_pos/account/categories/update.yml",
    "lightspeed_pos/account/categories/update_invalid.yml",
    "lightspeed_pos/account/categories/destroy.yml",
    "lightspeed_pos/account/vendors/create.yml",
    "lightspeed_pos/account/vendors/update.yml",
    "lightspeed_pos/account/vendors/archive.yml",
    "lightspeed_pos/account/ItemAttributeSet/index.yml",
    "lightspeed_pos/account/ItemAttributeSet/show.yml",
    "lightspeed_pos-history/accounts_401.yml",
    "lightspeed_pos-history/accounts_rate_limit.yml",
    "lightspeed_pos-history/account/item_matricies/create.yml",
    "lightspeed_pos-history/account/item_matricies/index.yml",
]
# Reads of records the recording's account held: the records are created first.
READS = [
    "lightspeed_pos/account/items/show.yml",
    "lightspeed_pos/account/items/index.yml",
    "lightspeed_pos/account/items/index_without_item_matrices.yml",
    "lightspeed_pos/account/ItemMatrix/show.yml",
    "lightspeed_pos/account/categories/index.yml",
    "lightspeed_pos/account/vendors/show.yml",
    "lightspeed_pos/account/vendors/index.yml",
]
# Recorded, and deliberately answered otherwise (each a [choice] in lightspeed-rseries.md).
NOT_REPLAYED = {
    "lightspeed_pos-history/account/item_attribute_sets/create.yml": (
        "2015 refused ItemAttributeSet POST with 405; the sandbox allows it (section 10.7)"
    ),
    "lightspeed_pos-history/account/create_item.yml": (
        "a 2015 one-shop account without the summary shop row; the sandbox follows 2016"
    ),
    "lightspeed_pos/account/price_levels/index.yml": "PriceLevel is not a sandbox resource",
    "lightspeed_pos/account/price_levels/show.yml": "PriceLevel is not a sandbox resource",
}


def test_every_cassette_is_replayed_or_excused() -> None:
    assert sorted([*WRITES, *READS, *NOT_REPLAYED]) == cassettes()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # A roomy bucket: the headers are checked, the seeding must not wait.
    store = RSeriesStore(token=TOKEN, account_id=ACCOUNT, rate_limit="100000/1000", seed=1)
    with httpx.Client(transport=SandboxTransport(store), base_url="http://rseries.invalid") as c:
        yield c
    store.close()


class Replay:
    """Sends recorded requests in V3 terms and keeps recorded id -> sandbox id."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.ids: dict[tuple[str, str], str] = {}

    def path(self, ex: Exchange) -> str:
        if ex.path == "Account.json":
            return "/API/V3/Account.json"
        parts = ex.path.removesuffix(".json").split("/")
        kind = parts[2]
        rest = [kind]
        if len(parts) > 3:
            rest.append(self.ids.get((kind, parts[3]), parts[3]))
        return f"/API/V3/Account/{ACCOUNT}/" + "/".join(rest + parts[4:]) + ".json"

    def query(self, ex: Exchange) -> list[tuple[str, str]]:
        by_field = {field: kind for kind, field in ID_FIELDS.items()}
        out = []
        for key, value in ex.query:
            if key == "offset":
                continue  # legacy paging: V3 follows next instead
            if key in by_field:
                value = self.ids.get((by_field[key], value), value)
            out.append((key, value))
        return out

    def send(self, ex: Exchange) -> httpx.Response:
        good = ex.status != 401
        headers = {"Authorization": f"Bearer {TOKEN if good else 'expired-or-wrong'}"}
        content = ex.body.encode() if ex.body else None
        if content:
            headers["Content-Type"] = "application/json"
        return self.client.request(
            ex.method, self.path(ex), params=self.query(ex), content=content, headers=headers
        )

    def learn(self, ex: Exchange, ours: httpx.Response) -> None:
        kind = ex.resource
        if ex.method == "POST" and ex.status == 200 and kind in ID_FIELDS:
            field = ID_FIELDS[kind]
            self.ids[(kind, ex.response[kind][field])] = ours.json()[kind][field]

    # -- seeding the records a read cassette's account held ---------------------------------

    def post(self, kind: str, body: dict[str, Any]) -> str:
        response = self.client.post(
            f"/API/V3/Account/{ACCOUNT}/{kind}.json",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 200, response.text
        return str(response.json()[kind][ID_FIELDS[kind]])

    def ref(self, kind: str, ident: str, **extra: str) -> str:
        if ident in {"0", ""}:
            return "0"
        if (kind, ident) not in self.ids:
            self.seed(
                kind,
                {
                    ID_FIELDS[kind]: ident,
                    "name": f"{kind} {ident}",
                    "description": f"{kind} {ident}",
                    **extra,
                },
            )
        return self.ids[(kind, ident)]

    def seed(self, kind: str, e: dict[str, Any]) -> None:
        ident = e[ID_FIELDS[kind]]
        if (kind, ident) in self.ids:
            return
        if kind == "Item":
            body = self._item(e)
        elif kind == "ItemMatrix":
            body = {
                "description": e["description"],
                "itemAttributeSetID": e.get("itemAttributeSetID", "1"),
                **self._common(e),
            }
        elif kind == "Category":
            body = {"name": e["name"], "parentID": self.ref("Category", e.get("parentID", "0"))}
        else:
            body = {k: e[k] for k in ("name", "accountNumber") if k in e}
            # The recording holds a vendor with a blank name (an import's); the API refuses one.
            body["name"] = body.get("name") or f"{kind} {ident}"
        self.ids[(kind, ident)] = self.post(kind, body)
        if kind == "ItemMatrix":
            for member in _rows(e.get("Items"), "Item"):
                attributes = {"itemAttributeSetID": body["itemAttributeSetID"]}
                self.seed("Item", {"ItemAttributes": attributes, **member})

    def _common(self, e: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "categoryID": self.ref("Category", e.get("categoryID", "0")),
            "manufacturerID": self.ref("Manufacturer", e.get("manufacturerID", "0")),
            "defaultVendorID": self.ref("Vendor", e.get("defaultVendorID", "0")),
        }
        for key in ("defaultCost", "tax", "itemType"):
            if key in e:
                body[key] = e[key]
        prices = _rows(e.get("Prices"), "ItemPrice")
        levels = {"Default": "1", "MSRP": "2"}
        body["Prices"] = {
            "ItemPrice": [
                {"amount": p["amount"], "useTypeID": p.get("useTypeID") or levels[p["useType"]]}
                for p in prices
                if p.get("useTypeID") or p.get("useType") in levels
            ]
        }
        return body

    def _item(self, e: dict[str, Any]) -> dict[str, Any]:
        body = {k: e[k] for k in ("description", "customSku", "upc", "ean", "manufacturerSku")}
        body.update(self._common(e))
        body["discountable"] = e["discountable"]
        if e.get("itemMatrixID", "0") != "0":
            attributes = e.get("ItemAttributes") or {}
            set_id = attributes.get("itemAttributeSetID", "1")
            body["itemMatrixID"] = self.ref(
                "ItemMatrix", e["itemMatrixID"], itemAttributeSetID=set_id
            )
            body["ItemAttributes"] = {
                "itemAttributeSetID": set_id,
                **{f"attribute{n}": attributes.get(f"attribute{n}", "") for n in (1, 2, 3)},
            }
        nums = _rows(e.get("ItemVendorNums"), "ItemVendorNum")
        if nums:
            body["ItemVendorNums"] = {
                "ItemVendorNum": [
                    {"vendorID": self.ref("Vendor", n["vendorID"]), "value": n["value"]}
                    for n in nums
                ]
            }
        return body


def _rows(container: Any, key: str) -> list[dict[str, Any]]:
    """The client's normalisation, written out: absent or "" -> [], object -> [object]."""
    if not container:
        return []
    inner = container.get(key) if isinstance(container, dict) else container
    if not inner:
        return []
    return inner if isinstance(inner, list) else [inner]


def _compare(ex: Exchange, ours: httpx.Response) -> None:
    assert ours.status_code == ex.status, (ex.method, ex.path, ours.text)
    if ex.status == 401:
        return  # V3 answers 401 in the OAuth shape (section 2); the status is what carries
    if ex.status >= 400:
        assert ours.json() == ex.response
        assert ("text/html" in ours.headers["content-type"]) == ("text/html" in ex.content_type)
        if "allow" in ex.headers:
            assert ours.headers["allow"]
        return
    if "x-ls-api-bucket-level" in ex.headers:
        assert BUCKET_HEADER.match(ours.headers["X-LS-API-Bucket-Level"])
    assert ours.headers.get("X-LS-Acct-Id") == ACCOUNT
    body = ours.json()
    recorded = dict(ex.response)
    is_list = ex.record_id is None and ex.method == "GET" and ex.path != "Account.json"
    if is_list:
        legacy = recorded.pop("@attributes")
        attributes = body.pop("@attributes")
        assert set(legacy) <= {"count", "offset", "limit"}
        assert set(attributes) == {"next", "previous"}
        assert all(isinstance(v, str) for v in attributes.values())
    assert_same_shape(recorded, body)
    assert set(recorded) == set(body), "entity key present exactly when recorded"


@pytest.mark.parametrize("name", WRITES)
def test_recorded_writes_and_refusals(name: str, client: httpx.Client) -> None:
    replay = Replay(client)
    for ex in load(name):
        ours = replay.send(ex)
        _compare(ex, ours)
        replay.learn(ex, ours)


@pytest.mark.parametrize("name", READS)
def test_recorded_reads_of_seeded_records(name: str, client: httpx.Client) -> None:
    exchanges = load(name)
    replay = Replay(client)
    for ex in exchanges:
        kind = ex.resource
        assert kind is not None
        for entity in _rows(ex.response, kind):
            replay.seed(kind, entity)
    following: str | None = None
    for ex in exchanges:
        paged = dict(ex.query).get("offset", "0") != "0"
        if paged:
            assert following, f"{name}: the sandbox gave no next page where one was recorded"
            ours = client.get(following, headers={"Authorization": f"Bearer {TOKEN}"})
        else:
            ours = replay.send(ex)
        _compare(ex, ours)
        assert len(_rows(ours.json(), kind)) == len(_rows(ex.response, kind))
        following = ours.json()["@attributes"].get("next")
    if following is not None:
        assert following == "", f"{name}: more pages than recorded"


def test_matrix_attribute_values_are_a_string_for_one_and_an_array_for_several(
    client: httpx.Client,
) -> None:
    """tap-lightspeedretail/data.json: `"attribute1Values":"White/Grey"` next to an array."""
    recorded = json.loads((REFERENCE / "tap-lightspeedretail" / "data.json").read_text())
    matrix = recorded["ItemMatrix"]
    replay = Replay(client)
    replay.seed("ItemMatrix", matrix)
    ident = replay.ids[("ItemMatrix", matrix["itemMatrixID"])]
    for size in matrix["attribute2Values"]:
        replay.post(
            "Item",
            {
                "itemMatrixID": ident,
                "ItemAttributes": {
                    "itemAttributeSetID": "1",
                    "attribute1": matrix["attribute1Values"],
                    "attribute2": size,
                },
            },
        )
    ours = client.get(
        f"/API/V3/Account/{ACCOUNT}/ItemMatrix/{ident}.json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert_same_shape(recorded, ours)
    assert ours["ItemMatrix"]["attribute1Values"] == "White/Grey"
    assert ours["ItemMatrix"]["attribute2Values"] == ["Large", "Medium", "Small"]
    assert ours["ItemMatrix"]["attribute3Values"] == ""


def test_an_expired_token_is_refused_with_401(client: httpx.Client) -> None:
    """tap-lightspeedretail/Inventory.txt: an expired token gets 401."""
    recorded = json.loads((REFERENCE / "tap-lightspeedretail" / "Inventory.txt").read_text())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/API/V3/Account.json", headers=auth).status_code == 200
    client.post("/_sandbox/tokens/expire")
    answer = client.get("/API/V3/Account.json", headers=auth)
    assert answer.status_code == int(recorded["httpCode"]) == 401
    assert answer.json()["error"] == "access_denied"
