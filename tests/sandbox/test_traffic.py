"""What stands in front of the catalog: auth, rate limiting, injected faults, stats, reset."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.sandbox import RateLimit, SandboxStore

from .builders import ok

TOKEN = {"Authorization": "Bearer sandbox-token"}


def _client(store: SandboxStore) -> httpx.Client:
    return httpx.Client(
        transport=SandboxTransport(store), base_url="http://sandbox.invalid", headers=TOKEN
    )


@pytest.fixture
def limited() -> Iterator[tuple[SandboxStore, httpx.Client]]:
    store = SandboxStore(rate_limit=RateLimit(3, 0.6))
    with _client(store) as client:
        yield store, client


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sandbox-token"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_without_the_right_bearer_token_it_is_401(
    sandbox: SandboxStore, headers: dict[str, str]
) -> None:
    with httpx.Client(transport=SandboxTransport(sandbox), base_url="http://x.invalid") as client:
        response = client.get("/api/2.0/products", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


def test_a_token_in_the_query_string_is_not_accepted(sandbox: SandboxStore) -> None:
    with httpx.Client(transport=SandboxTransport(sandbox), base_url="http://x.invalid") as client:
        assert client.get("/api/2.0/products?access_token=sandbox-token").status_code == 401
        assert client.get("/api/2.0/products?token=sandbox-token").status_code == 401


def test_sandbox_controls_need_no_token_and_are_not_counted(sandbox: SandboxStore) -> None:
    with httpx.Client(transport=SandboxTransport(sandbox), base_url="http://x.invalid") as client:
        client.get("/api/2.0/retailer", headers=TOKEN)
        stats = ok(client.get("/_sandbox/stats"))
        ok(client.get("/_sandbox/faults"))
        assert ok(client.get("/_sandbox/stats")) == stats


# -- rate limiting --------------------------------------------------------------------------


def test_every_response_carries_the_rate_limit_headers(
    limited: tuple[SandboxStore, httpx.Client],
) -> None:
    _, client = limited
    answers = [
        client.get("/api/2.0/retailer"),
        client.get("/api/2.0/products/00000000-0000-4000-8000-000000000000"),
        client.post("/api/2.0/brands", content=b"{"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 400]
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["3"] * 3
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]


def test_over_the_limit_is_429_with_an_http_date_retry_after(
    limited: tuple[SandboxStore, httpx.Client],
) -> None:
    store, client = limited
    for _ in range(3):
        ok(client.get("/api/2.0/retailer"))
    started = time.time()
    refused = client.get("/api/2.0/retailer")
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "Too Many Requests" and body["message"] == "Rate limiting enforced"
    retry_after = refused.headers["Retry-After"]
    assert body["retry-after"] == retry_after and retry_after.endswith(" GMT")
    when = parsedate_to_datetime(retry_after).timestamp()
    # Whole seconds, rounded up: never earlier than the window really frees a slot.
    assert started < when <= started + 0.6 + 1
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    time.sleep(max(0.0, when - time.time()) + 0.01)
    ok(client.get("/api/2.0/retailer"))
    assert store.stats()["rate_limited"] == 1


def test_the_default_limit_is_300_per_register_plus_50() -> None:
    store = SandboxStore(registers=2)
    with _client(store) as client:
        response = client.get("/api/2.0/retailer")
    assert response.headers["X-RateLimit-Limit"] == "650"
    assert store.faults.rate_limit == RateLimit(650, 300.0)
    assert RateLimit.parse("xseries") == RateLimit(350, 300.0)
    assert RateLimit.parse("20/1.5") == RateLimit(20, 1.5)
    assert RateLimit.parse("off") is None
    with pytest.raises(ValueError):
        RateLimit.parse("lots")


def test_rate_limit_can_be_switched_off_and_on_at_run_time(
    limited: tuple[SandboxStore, httpx.Client],
) -> None:
    _, client = limited
    ok(client.put("/_sandbox/faults", json={"rate_limit": "off"}))
    assert all(client.get("/api/2.0/retailer").status_code == 200 for _ in range(10))
    ok(client.put("/_sandbox/faults", json={"rate_limit": "2/60"}))
    statuses = [client.get("/api/2.0/retailer").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# -- faults ---------------------------------------------------------------------------------


def test_error_faults_mix_500_502_503_and_commit_nothing() -> None:
    store = SandboxStore(rate_limit=None, fault_rate=1.0, seed=7)
    with _client(store) as client:
        answers = [client.post("/api/2.0/brands", json={"name": f"B{n}"}) for n in range(30)]
        assert {a.status_code for a in answers} == {500, 502, 503}
        assert all("error" in a.json() and "message" in a.json() for a in answers)
        store.set_faults(fault_rate=0.0)
        assert ok(client.get("/api/2.0/brands"))["data"] == []
    assert store.stats()["faults_injected"] == 30


def test_faults_are_reproducible_from_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        # Bursts last a span of time, so only the per-request faults are compared here.
        store = SandboxStore(rate_limit=None, fault_rate=0.3, timeout_rate=0.3, seed=seed)
        with _client(store) as client:
            outcomes = []
            for n in range(60):
                try:
                    outcomes.append(
                        client.post("/api/2.0/tags", json={"name": f"t{n}"}).status_code
                    )
                except httpx.ReadTimeout:
                    outcomes.append(0)
            return outcomes

    first = statuses(11)
    assert first == statuses(11)
    assert {0, 200, 500, 502, 503} == set(first) and first != statuses(12)


def test_latency_is_added_and_overlaps_between_concurrent_requests() -> None:
    store = SandboxStore(rate_limit=None, latency_ms=80)
    with _client(store) as client:
        started = time.monotonic()
        ok(client.get("/api/2.0/retailer"))
        assert time.monotonic() - started >= 0.08
        threads = [
            threading.Thread(target=lambda: ok(client.get("/api/2.0/outlets"))) for _ in range(8)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started < 8 * 0.08 / 2  # one after another would take 0.64 s


def test_a_429_burst_lasts_its_window_then_clears() -> None:
    store = SandboxStore(rate_limit=None, burst_429_rate=1.0)
    store.set_faults(burst_seconds=0.3)
    with _client(store) as client:
        first = client.get("/api/2.0/retailer")
        assert first.status_code == 429 and "Retry-After" in first.headers
        store.set_faults(burst_429_rate=0.0)
        assert client.get("/api/2.0/retailer").status_code == 429  # still inside the burst
        time.sleep(0.32)
        ok(client.get("/api/2.0/retailer"))
    assert store.stats()["faults_injected"] == 2 and store.stats()["rate_limited"] == 0


def test_commit_then_timeout_commits_the_write_and_raises_read_timeout() -> None:
    store = SandboxStore(rate_limit=None, timeout_rate=1.0)
    with _client(store) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(
                "/api/2.0/products", json={"name": "Mug", "sku": "MUG", "price_including_tax": 1}
            )
        ok(client.get("/api/2.0/retailer"))  # reads are never dropped
        store.set_faults(timeout_rate=0.0)
        found = ok(client.get("/api/2.0/products", params={"sku": "MUG"}))["data"]
        assert [p["name"] for p in found] == ["Mug"]
        # A rejected write commits nothing, so its answer is not dropped.
        store.set_faults(timeout_rate=1.0)
        again = client.post(
            "/api/2.0/products", json={"name": "Mug", "sku": "MUG", "price_including_tax": 1}
        )
        assert (
            again.status_code == 422 and again.json()["fields"]["sku_existing_id"] == found[0]["id"]
        )
    assert store.stats()["faults_injected"] == 1


def test_faults_are_settable_over_http(sandbox_client: httpx.Client, sandbox: SandboxStore) -> None:
    settings = ok(
        sandbox_client.put(
            "/_sandbox/faults",
            json={"fault_rate": 0.25, "latency_ms": 1, "timeout_rate": 0.1, "burst_429_rate": 0},
        )
    )
    assert settings["fault_rate"] == 0.25 and settings["latency_ms"] == 1
    assert sandbox.faults.timeout_rate == 0.1
    for bad in (
        {"fault_rate": 2},
        {"unknown": 1},
        {"rate_limit": "sometimes"},
        {"latency_ms": "x"},
    ):
        response = sandbox_client.put("/_sandbox/faults", json=bad)
        assert response.status_code == 422, bad
    assert sandbox.faults.fault_rate == 0.25


# -- stats and reset ------------------------------------------------------------------------


def test_stats_count_each_kind_of_call(sandbox_client: httpx.Client) -> None:
    attribute = ok(sandbox_client.post("/api/2.0/variant_attributes", json={"name": "Size"}), 201)
    product = ok(
        sandbox_client.post(
            "/api/2.0/products", json={"name": "M", "sku": "M", "price_including_tax": 1}
        )
    )
    for _ in range(2):
        sandbox_client.put(
            f"/api/2.1/products/{product['data'][0]}", json={"details": {"is_active": False}}
        )
    sandbox_client.get(f"/api/2.0/variant_attributes/{attribute['data']['id']}")
    sandbox_client.get("/api/2.0/products", headers={"Authorization": "Bearer nope"})
    assert ok(sandbox_client.get("/_sandbox/stats")) == {
        "requests": {
            "total": 6,
            "by_method": {"GET": 2, "POST": 2, "PUT": 2},
            "by_route": {
                "GET /api/2.0/products": 1,
                "GET /api/2.0/variant_attributes/{id}": 1,
                "POST /api/2.0/products": 1,
                "POST /api/2.0/variant_attributes": 1,
                "PUT /api/2.1/products/{id}": 2,
            },
        },
        "rate_limited": 0,
        "faults_injected": 0,
    }
    zero = ok(sandbox_client.post("/_sandbox/stats/reset"))
    assert zero["requests"] == {"total": 0, "by_method": {}, "by_route": {}}


def test_reset_wipes_back_to_the_seed(sandbox_client: httpx.Client, sandbox: SandboxStore) -> None:
    seeded_taxes = ok(sandbox_client.get("/api/2.0/taxes"))["data"]
    ok(sandbox_client.post("/api/2.0/brands", json={"name": "Acme"}))
    ok(
        sandbox_client.post(
            "/api/2.0/products", json={"name": "M", "sku": "M", "price_including_tax": 1}
        )
    )
    ok(sandbox_client.post("/_sandbox/reset"))
    assert ok(sandbox_client.get("/api/2.0/brands"))["data"] == []
    assert ok(sandbox_client.get("/api/2.0/products?deleted=true"))["data"] == []
    assert [t["id"] for t in ok(sandbox_client.get("/api/2.0/taxes"))["data"]] == [
        t["id"] for t in seeded_taxes
    ]
    assert sandbox.stats()["requests"]["total"] == 3


def test_a_file_store_keeps_its_data_across_restarts(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "sandbox.db"
    first = SandboxStore(path, rate_limit=None)
    with _client(first) as client:
        brand = ok(client.post("/api/2.0/brands", json={"name": "Acme"}))["data"]
    first.close()
    second = SandboxStore(path, rate_limit=None)
    with _client(second) as client:
        assert [b["id"] for b in ok(client.get("/api/2.0/brands"))["data"]] == [brand]
        assert len(ok(client.get("/api/2.0/outlets"))["data"]) == 1
    second.close()
