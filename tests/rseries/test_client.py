"""The R-Series client against the R-Series sandbox, in process and over a real socket: OAuth
with rotating refresh tokens, account discovery, normalisation, paging, pacing, 429 waits,
retries and one-sentence errors without secrets."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.errors import ApiError, ConfigError, TransportError
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.rseries.auth import OAuth, RefreshCredentials, TokenFile
from reconciler.providers.rseries.client import (
    RSeriesClient,
    client_from_environment,
    normalize,
    rows,
)
from reconciler.providers.rseries.pacing import BucketPacer, request_cost
from reconciler.providers.rseries.sandbox import RSeriesStore

from .cassettes import REFERENCE, cassettes, load

TOKEN = "access-0"
REFRESH = "refresh-0"
SECRET = "client-secret-xyz"
BASE = "http://rseries.invalid"


class FakeTime:
    """One clock for the store's bucket and the client's pacer; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_store(**options: Any) -> RSeriesStore:
    settings: dict[str, Any] = {
        "token": TOKEN,
        "refresh_token": REFRESH,
        "client_secret": SECRET,
        "rate_limit": None,
        "seed": 7,
    }
    settings.update(options)
    return RSeriesStore(**settings)


@pytest.fixture
def store() -> Iterator[RSeriesStore]:
    s = make_store()
    yield s
    s.close()


def env(**extra: str) -> dict[str, str]:
    return {"LIGHTSPEED_BASE_URL": BASE, **extra}


def refresh_env(**extra: str) -> dict[str, str]:
    trio = {
        "LIGHTSPEED_CLIENT_ID": "sandbox-client",
        "LIGHTSPEED_CLIENT_SECRET": SECRET,
        "LIGHTSPEED_REFRESH_TOKEN": REFRESH,
    }
    return {**env(), **trio, **extra}


def client_for(
    store: RSeriesStore, environ: dict[str, str], token_file: Path, **options: Any
) -> RSeriesClient:
    return client_from_environment(
        environ, token_file=token_file, transport=SandboxTransport(store), **options
    )


def routes(store: RSeriesStore) -> dict[str, int]:
    return dict(store.stats()["requests"]["by_route"])


def test_access_token_from_environment_and_account_discovered_once(
    store: RSeriesStore, tmp_path: Path
) -> None:
    with client_for(store, env(LIGHTSPEED_TOKEN=TOKEN), tmp_path / "t.json") as client:
        assert client.account_id() == store.account_id
        client.create("Item", {"description": "x"})
        client.query("Item")
    assert routes(store)["GET /API/V3/Account.json"] == 1
    assert not (tmp_path / "t.json").exists()  # nothing to rotate without refresh credentials


def test_given_account_id_is_not_looked_up(store: RSeriesStore, tmp_path: Path) -> None:
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with client_for(store, environ, tmp_path / "t.json") as client:
        client.query("Item")
    assert "GET /API/V3/Account.json" not in routes(store)


def test_containers_and_scalars_are_normalised(store: RSeriesStore, tmp_path: Path) -> None:
    with client_for(store, env(LIGHTSPEED_TOKEN=TOKEN), tmp_path / "t.json") as client:
        matrix = client.create(
            "ItemMatrix",
            {
                "description": "Tee",
                "itemAttributeSetID": 1,
                "Prices": {"ItemPrice": [{"amount": "25.50", "useTypeID": "1"}]},
            },
        )
        assert matrix["attribute1Values"] == [] and matrix["itemMatrixID"] > 0
        item = client.create(
            "Item",
            {
                "itemMatrixID": matrix["itemMatrixID"],
                "ItemAttributes": {"itemAttributeSetID": "1", "attribute1": "Red"},
                "Tags": {"tag": ["one"]},
            },
        )
        assert item["archived"] is False and item["tax"] is True
        assert isinstance(item["itemID"], int) and item["timeStamp"].tzinfo is not None
        assert item["Prices"][0] == {
            "amount": Decimal("25.5"),
            "useTypeID": 1,
            "useType": "Default",
        }
        read = client.read("Item", item["itemID"], load_relations=["Tags", "ItemAttributes"])
        assert read["Tags"] == ["one"]  # one tag arrives as a bare string
        assert read["ItemAttributes"]["attribute1"] == "Red"
        again = client.read("ItemMatrix", matrix["itemMatrixID"])
        assert again["attribute1Values"] == ["Red"]  # one value arrives as a plain string
        assert client.query("Item", {"customSku": "nothing"}) == []
        assert client.read("Category", 999) is None


def test_rows_undoes_the_single_vs_list_quirk() -> None:
    assert rows({"Item": {"itemID": "1"}}, "Item") == [{"itemID": "1"}]
    assert rows({"@attributes": {"count": "0"}}, "Item") == []
    assert rows("") == [] and rows(None) == [] and rows([1, 2]) == [1, 2]


@pytest.mark.parametrize("name", cassettes())
def test_normalise_every_recorded_body(name: str) -> None:
    """No container is left as a bare object or "", and no id stays a string."""
    for ex in load(name):
        if not isinstance(ex.response, dict) or "httpCode" in ex.response:
            continue
        normalised = normalize(ex.response)
        _check(normalised)
    for raw in ("data.json",):
        _check(normalize(json.loads((REFERENCE / "tap-lightspeedretail" / raw).read_text())))


def _check(value: Any) -> None:
    from reconciler.providers.rseries.client import CONTAINERS

    if isinstance(value, dict):
        for key, inner in value.items():
            if key in CONTAINERS or (key.startswith("attribute") and key.endswith("Values")):
                assert isinstance(inner, list), key
            if key.endswith("ID") and key != "publicID" and isinstance(inner, str):
                assert not inner.isdigit(), key
            _check(inner)
    elif isinstance(value, list):
        for inner in value:
            _check(inner)


def test_paging_follows_next_across_pages(store: RSeriesStore, tmp_path: Path) -> None:
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with client_for(store, environ, tmp_path / "t.json") as client:
        for n in range(205):
            client.create("Item", {"description": f"Item {n}", "customSku": f"S{n}"})
        store.reset_stats()
        found = client.query("Item", {"description": "~,Item%"})
        assert [i["customSku"] for i in found] == [f"S{n}" for n in range(205)]
        assert client.count("Item") == 205
    assert routes(store) == {"GET /API/V3/Account/{accountID}/Item.json": 4}


def test_refresh_flow_rotates_and_stores_the_newest_pair(
    store: RSeriesStore, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens" / "rseries.json"
    with client_for(store, refresh_env(), token_file) as client:
        client.query("Item")
    saved = json.loads(token_file.read_text())
    assert saved["refresh_token"] != REFRESH and saved["seed"] == REFRESH
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # The old refresh token died when the new access token was used.
    with httpx.Client(transport=SandboxTransport(store), base_url=BASE) as raw:
        form = {"grant_type": "refresh_token", "client_id": "sandbox-client"}
        dead = raw.post(
            "/auth/oauth/token", data={**form, "client_secret": SECRET, "refresh_token": REFRESH}
        )
    assert dead.status_code == 400
    # A later run starts from the file, not the dead configured token, and needs no refresh.
    with client_for(store, refresh_env(), token_file) as again:
        again.query("Item")
    assert routes(store)["POST /auth/oauth/token"] == 2  # one refresh + the dead probe


def test_401_refreshes_once_then_works(store: RSeriesStore, tmp_path: Path) -> None:
    token_file = tmp_path / "t.json"
    with client_for(store, refresh_env(LIGHTSPEED_TOKEN=TOKEN), token_file) as client:
        client.query("Item")
        assert not token_file.exists()  # the given access token worked: no refresh
        store.tokens.expire_access_tokens()
        client.query("Item")
        client.query("Item")
    assert routes(store)["POST /auth/oauth/token"] == 1
    assert routes(store)["GET /API/V3/Account/{accountID}/Item.json"] == 4  # one 401 retried


def test_a_second_401_fails_in_one_sentence_without_secrets(tmp_path: Path) -> None:
    store = make_store(access_token_seconds=0)  # every refreshed token is born expired
    with client_for(store, refresh_env(LIGHTSPEED_TOKEN=TOKEN), tmp_path / "t.json") as client:
        store.tokens.expire_access_tokens()
        with pytest.raises(ApiError) as failure:
            client.query("Item")
    message = str(failure.value)
    assert "even after refreshing" in message and message.count(". ") <= 1
    for secret in (
        TOKEN,
        REFRESH,
        SECRET,
        json.loads((tmp_path / "t.json").read_text())["refresh_token"],
    ):
        assert secret not in message
    assert routes(store)["POST /auth/oauth/token"] == 1
    store.close()


def test_only_an_access_token_fails_on_401(store: RSeriesStore, tmp_path: Path) -> None:
    with (
        client_for(store, env(LIGHTSPEED_TOKEN="wrong"), tmp_path / "t.json") as client,
        pytest.raises(ApiError, match="Check LIGHTSPEED_TOKEN") as failure,
    ):
        client.account_id()
    assert "wrong" not in str(failure.value)


def test_a_refused_refresh_names_what_to_do(store: RSeriesStore, tmp_path: Path) -> None:
    environ = refresh_env(LIGHTSPEED_REFRESH_TOKEN="revoked-refresh")
    with (
        client_for(store, environ, tmp_path / "t.json") as client,
        pytest.raises(ApiError, match="set LIGHTSPEED_REFRESH_TOKEN") as failure,
    ):
        client.query("Item")
    assert "revoked-refresh" not in str(failure.value) and SECRET not in str(failure.value)


def test_two_processes_share_the_rotation(store: RSeriesStore, tmp_path: Path) -> None:
    token_file = tmp_path / "t.json"
    first = client_for(store, refresh_env(), token_file)
    first.query("Item")
    second = client_for(store, refresh_env(), token_file)
    second.query("Item")  # uses the pair the first one stored
    store.tokens.expire_access_tokens()
    second.query("Item")  # refreshes with the rotated refresh token from the file
    first.query("Item")  # finds the second's fresh pair instead of using a dead token
    first.close()
    second.close()
    assert routes(store)["POST /auth/oauth/token"] == 2


def test_partial_refresh_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="all of LIGHTSPEED_CLIENT_ID"):
        client_from_environment(env(LIGHTSPEED_CLIENT_ID="x"), token_file=tmp_path / "t")
    with pytest.raises(ConfigError, match="No R-Series credentials"):
        client_from_environment(env(), token_file=tmp_path / "t")


def test_reprs_hold_no_secret(tmp_path: Path) -> None:
    auth = OAuth(
        token_url=f"{BASE}/auth/oauth/token",
        access_token=TOKEN,
        refresh=RefreshCredentials("id", SECRET, REFRESH),
        token_file=TokenFile(tmp_path / "t"),
    )
    client = RSeriesClient(BASE, auth=auth)
    for text in (repr(auth), repr(client), repr(RefreshCredentials("id", SECRET, REFRESH))):
        assert SECRET not in text and REFRESH not in text and TOKEN not in text
    client.close()


def test_pacing_never_overflows_the_bucket(tmp_path: Path) -> None:
    clock = FakeTime()
    store = make_store(rate_limit="10/2", bucket_clock=clock.time)
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with client_for(store, environ, tmp_path / "t", clock=clock.time, sleep=clock.sleep) as client:
        for n in range(6):
            client.create("Category", {"name": f"C{n}"})  # 10 units each: a full bucket
        for _ in range(20):
            client.query("Category", {"categoryID": "1"})
    assert store.stats()["rate_limited"] == 0
    # 60 + 20 units through a bucket of 10 draining 2/s: at least (80 - 10) / 2 s of waiting.
    assert 35.0 <= sum(clock.slept) <= 35.0 * 1.1
    store.close()


def test_429_waits_retry_after(tmp_path: Path) -> None:
    clock = FakeTime()
    store = make_store(rate_limit="10/1", bucket_clock=clock.time)
    # Someone else filled the bucket: the client has not seen a header yet.
    with httpx.Client(transport=SandboxTransport(store), base_url=BASE) as other:
        for n in range(1):
            other.post(
                f"/API/V3/Account/{store.account_id}/Category.json",
                json={"name": f"X{n}"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with client_for(store, environ, tmp_path / "t", clock=clock.time, sleep=clock.sleep) as client:
        assert len(client.query("Category")) == 1
        assert client.stats().rate_limited == 1
    assert clock.slept[0] >= 1.0  # Retry-After: the bucket is full; one second drains it
    assert store.stats()["rate_limited"] == 1
    store.close()


def test_reads_retry_5xx_and_creates_do_not(store: RSeriesStore, tmp_path: Path) -> None:
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    clock = FakeTime()
    with client_for(store, environ, tmp_path / "t", sleep=clock.sleep) as client:
        store.set_faults(fault_rate=1.0)
        with pytest.raises(ApiError, match="gave up after 5 attempts"):
            client.query("Item")
        with pytest.raises(TransportError, match="look the object up"):
            client.create("Item", {"description": "x"})
        store.set_faults(fault_rate=0.0, timeout_rate=1.0)
        with pytest.raises(TransportError, match="outcome is unknown"):
            client.create("Item", {"description": "committed"})
        store.set_faults(timeout_rate=0.0)
        assert [i["description"] for i in client.query("Item")] == ["committed"]
    by_route = routes(store)
    assert by_route["GET /API/V3/Account/{accountID}/Item.json"] == 6
    assert by_route["POST /API/V3/Account/{accountID}/Item.json"] == 2
    assert len(clock.slept) == 4  # backoff between the five read attempts


def test_refusals_quote_the_store(store: RSeriesStore, tmp_path: Path) -> None:
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with (
        client_for(store, environ, tmp_path / "t") as client,
        pytest.raises(ApiError) as failure,
    ):
        client.create("Item", {"description": ""})
    assert str(failure.value) == (
        f"POST /API/V3/Account/{store.account_id}/Item.json was rejected with 400: Item not "
        "created. An Item must have a description."
    )


def test_images_upload_and_archive(store: RSeriesStore, tmp_path: Path) -> None:
    environ = env(LIGHTSPEED_TOKEN=TOKEN)
    with client_for(store, environ, tmp_path / "t") as client:
        item = client.create("Item", {"description": "Mug"})
        image = client.upload_image(
            "Item",
            item["itemID"],
            filename="mug.gif",
            content=b"GIF89a",
            media_type="image/gif",
            description="front",
            ordering=2,
        )
        assert image["ordering"] == 2 and image["size"] == 6 and image["itemID"] == item["itemID"]
        archived = client.delete("Item", item["itemID"])
        assert archived["archived"] is True
        assert client.query("Item") == []
        assert len(client.query("Item", {"archived": "true"})) == 1


def test_request_costs_follow_the_docs() -> None:
    assert request_cost("POST", "/API/V3/Account/1/Category.json", None, {"name": "x"}) == 10
    assert request_cost("GET", "/API/V3/Account/1/Item.json", {"count": "1"}, None) == 10
    rel = {"load_relations": '["ItemShops","Category"]'}
    assert request_cost("GET", "/API/V3/Account/1/Item.json", rel, None) == 1.6
    assert request_cost("GET", "/API/V3/Account/1/Item/5.json", rel, None) == 1.3
    body = {"description": "x", "Prices": {"ItemPrice": [{"amount": 1}, {"amount": 2}]}}
    assert request_cost("POST", "/API/V3/Account/1/Item.json", None, body) == 2.0


def test_pacer_spaces_requests_from_the_reported_level() -> None:
    clock = FakeTime()
    pacer = BucketPacer(clock=clock.time, margin=0.0)
    first = pacer.acquire(1, clock.sleep)  # nothing known yet: no guessing
    pacer.observe(first, level_header="89/90", drip_header="2")
    assert pacer.delay(1) == 0  # 89 + 1 fits exactly
    pacer.acquire(1, clock.sleep)
    assert pacer.delay(10) == pytest.approx(5.0)  # 90 + 10 must drain 10 at 2/s
    pacer.acquire(10, clock.sleep)
    assert clock.slept == [pytest.approx(5.0)]
    pacer.refused(30)
    assert pacer.delay(1) >= 30
    assert pacer.stats().waits == 1 and pacer.stats().known


def test_pacer_counts_unanswered_later_requests() -> None:
    clock = FakeTime()
    pacer = BucketPacer(clock=clock.time, margin=0.0)
    early = pacer.acquire(1, clock.sleep)
    later = pacer.acquire(5, clock.sleep)
    # The early request's answer cannot include the later one: it is still on the way.
    pacer.observe(early, level_header="1/10", drip_header="1")
    assert pacer.delay(4) == 0 and pacer.delay(5) == pytest.approx(1.0)
    pacer.observe(later, level_header="6/10", drip_header="1")
    assert pacer.delay(5) == pytest.approx(1.0)


def test_pacer_never_takes_a_stale_report_when_answers_cross() -> None:
    clock = FakeTime()
    pacer = BucketPacer(clock=clock.time, margin=0.0)
    first = pacer.acquire(1, clock.sleep)
    second = pacer.acquire(5, clock.sleep)
    # The store counted both; the second's answer comes back first. The first is still
    # unanswered, so it is counted too (it may have reached the store after the second).
    pacer.observe(second, level_header="6/10", drip_header="1")
    assert pacer.delay(3) == 0 and pacer.delay(4) == pytest.approx(1.0)
    # The first's report, made before the second arrived, lacks the second: not taken (before,
    # it set the level to 1 and the next requests overflowed the bucket: two 429s in 30,000).
    pacer.observe(first, level_header="1/10", drip_header="1")
    assert pacer.delay(4) == pytest.approx(1.0)


def test_pacer_counts_earlier_unanswered_requests() -> None:
    clock = FakeTime()
    pacer = BucketPacer(clock=clock.time, margin=0.0)
    first = pacer.acquire(1, clock.sleep)
    second = pacer.acquire(2, clock.sleep)
    # The second reached the store first, without the first in its report.
    pacer.observe(second, level_header="7/10", drip_header="1")
    assert pacer.delay(2) == 0 and pacer.delay(3) == pytest.approx(1.0)  # 7 + 1 in flight
    pacer.observe(first, level_header="8/10", drip_header="1")  # older ticket: not taken
    assert pacer.delay(3) == pytest.approx(1.0)


def test_client_over_a_real_socket_with_rotation_and_paging(tmp_path: Path) -> None:
    store = make_store(rate_limit="rseries")
    with serve_in_thread(store) as url:
        environ = refresh_env(LIGHTSPEED_BASE_URL=url)
        with client_from_environment(environ, token_file=tmp_path / "t.json") as client:
            for n in range(3):
                client.create("Tag", {"name": f"Tag {n}"})
            store.tokens.expire_access_tokens()
            names = [t["name"] for t in client.iter_query("Tag", {"limit": "2"})]
            assert names == ["tag0", "tag1", "tag2"]
            assert client.pacer.stats().known and client.pacer.stats().size == 90
    assert routes(store)["POST /auth/oauth/token"] == 2
    store.close()


def test_threads_sharing_one_client_never_overflow(tmp_path: Path) -> None:
    store = make_store(rate_limit="5/50")  # a small bucket that drains fast: real time
    environ = env(LIGHTSPEED_TOKEN=TOKEN, LIGHTSPEED_ACCOUNT_ID=store.account_id)
    with client_for(store, environ, tmp_path / "t") as client:
        threads = [
            threading.Thread(target=lambda: [client.query("Item") for _ in range(20)])
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.stats().requests == 80
    assert store.stats()["rate_limited"] == 0
    store.close()


def test_pacer_does_not_spin_on_float_noise() -> None:
    clock = FakeTime()
    pacer = BucketPacer(clock=clock.time, margin=0.05)
    first = pacer.acquire(1, clock.sleep)
    pacer.observe(first, level_header="1/10", drip_header="1")
    pacer.refused(1.0)
    # After the wait, 10 - 1.05 + 1 is the room left up to float noise smaller than the
    # clock's resolution: asking for that wait again would never end.
    pacer.acquire(1, clock.sleep)
    assert clock.slept == [pytest.approx(1.05)]
