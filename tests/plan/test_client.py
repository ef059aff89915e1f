"""The client's network rules: pacing, 429 waits, retries, timeouts, and a token kept secret.

Most run against the sandbox store (its fault injection and rate limiter are the test double);
a few need exact sequences of answers and use httpx's own MockTransport as a scripted network.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import httpx
import pytest

from reconciler.errors import ApiError, TransportError
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import RateLimit, SandboxStore
from tests.fakes import TOKEN


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(
    answers: list[httpx.Response | Exception], seen: list[httpx.Request]
) -> httpx.MockTransport:
    queue: Iterator[httpx.Response | Exception] = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler)


def make_client(transport: httpx.BaseTransport, clock: FakeTime, **kwargs: object) -> Client:
    return Client(
        "http://store.test",
        TOKEN,
        transport=transport,
        sleep=clock.sleep,
        clock=clock.clock,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def ok(body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"data": []}, headers=headers)


def test_every_request_carries_token_user_agent_and_a_timeout() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime()
    with make_client(scripted([ok()], seen), clock, timeout=7.5) as client:
        client.get("/api/2.0/brands")
    request = seen[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"].startswith("lightspeed-catalog/")
    assert "Lightspeed X-Series" in request.headers["User-Agent"]
    assert request.extensions["timeout"] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}
    assert TOKEN not in str(request.url)


def test_429_waits_until_the_http_date_in_retry_after() -> None:
    clock = FakeTime()
    retry_at = clock.now + 42
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(
            429,
            json={"error": "Too Many Requests", "message": "Rate limiting enforced"},
            headers={"Retry-After": formatdate(retry_at, usegmt=True)},
        ),
        ok({"data": [{"id": "b1", "name": "Acme", "version": 3}], "version": {"min": 3, "max": 3}}),
    ]
    with make_client(scripted(answers, seen), clock) as client:
        page = client.list_page("brand")
    assert [b["name"] for b in page.items] == ["Acme"]
    assert len(seen) == 2
    assert clock.now == pytest.approx(retry_at, abs=0.01)  # waited exactly until the date
    stats = client.stats()
    assert (stats.requests, stats.rate_limited, stats.retries) == (2, 1, 0)


def test_a_429_makes_every_thread_wait() -> None:
    """The pacer is shared: after one thread drew a 429, no thread sends before Retry-After."""
    limited = threading.Event()
    sent: list[tuple[str, float]] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            sent.append((request.url.path, time.monotonic()))
            first = len(sent) == 1
        if first:
            limited.set()
            return httpx.Response(429, headers={"Retry-After": "1"})
        return ok()

    with Client("http://store.test", TOKEN, transport=httpx.MockTransport(handler)) as client:
        a = threading.Thread(target=client.get, args=("/api/2.0/tags",))
        a.start()
        limited.wait(5)
        deadline = time.monotonic() + 5
        while client.stats().rate_limited == 0:  # thread A has recorded the 429's wait
            assert time.monotonic() < deadline
            time.sleep(0.005)
        b = threading.Thread(target=client.get, args=("/api/2.0/brands",))
        b.start()
        a.join(5)
        b.join(5)
    first_at = sent[0][1]
    later = [at for _, at in sent[1:]]
    assert len(later) == 2
    assert all(at >= first_at + 0.95 for at in later)


def test_5xx_on_a_read_is_retried_with_capped_jittered_backoff() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503, json={"error": "Service Unavailable"}),
        httpx.Response(500, json={"error": "Internal Server Error"}),
        ok(),
    ]
    with make_client(scripted(answers, seen), clock, backoff_base=1.0, backoff_cap=1.5) as client:
        client.get("/api/2.0/tags")
    assert len(seen) == 3
    assert client.stats().retries == 2
    # Full jitter: each delay is random within [0, min(cap, base * 2**n)].
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 1.5


def test_reads_give_up_after_max_attempts_with_one_clear_sentence() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(502, json={"error": "Bad Gateway", "message": "upstream"})
    ] * 3
    client = make_client(scripted(answers, seen), clock, max_attempts=3)
    with client, pytest.raises(ApiError) as info:
        client.get("/api/2.0/products", {"page_size": 5})
    assert len(seen) == 3
    message = str(info.value)
    assert message.startswith("GET /api/2.0/products?page_size=5 failed with 502 Bad Gateway")
    assert "gave up after 3 attempts" in message


def test_other_4xx_are_never_retried_and_quote_the_store() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(
            422,
            json={
                "error": "Validation failed",
                "fields": {
                    "sku": "A product with this SKU already exists",
                    "sku_existing_id": "p1",
                },
            },
        )
    ]
    with make_client(scripted(answers, seen), clock) as client, pytest.raises(ApiError) as info:
        client.create_product({"name": "Tee", "sku": "TEE"})
    assert len(seen) == 1
    assert info.value.status == 422
    assert isinstance(info.value.body, dict)
    assert info.value.body["fields"]["sku_existing_id"] == "p1"
    assert "POST /api/2.0/products was rejected with 422" in str(info.value)
    assert "already exists" in str(info.value)


def test_401_names_the_token_without_showing_it(store: SandboxStore) -> None:
    c = Client("http://sandbox.test", "wrong-token-123", transport=SandboxTransport(store))
    with c, pytest.raises(ApiError) as info:
        c.retailer()
    assert info.value.status == 401
    assert "LIGHTSPEED_TOKEN" in str(info.value)
    assert "wrong-token-123" not in str(info.value)


def test_a_create_whose_answer_never_came_is_not_resent(store: SandboxStore) -> None:
    """Commit-then-timeout: the write happened, the answer was lost. The client must say
    "outcome unknown" instead of re-sending (which would make a duplicate)."""
    store.set_faults(timeout_rate=1.0)
    with Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as client:
        with pytest.raises(TransportError) as info:
            client.create_brand("Acme")
        assert "outcome is unknown" in str(info.value)
        store.set_faults(timeout_rate=0.0)
        brands = client.list_page("brand").items
    assert [b["name"] for b in brands] == ["Acme"]  # committed exactly once
    assert store.stats()["requests"]["by_method"]["POST"] == 1


def test_a_5xx_on_a_create_is_outcome_unknown_not_retried() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [httpx.Response(500, json={"error": "boom"})]
    with make_client(scripted(answers, seen), clock) as client, pytest.raises(TransportError):
        client.create_tag("summer")
    assert len(seen) == 1


def test_idempotent_writes_are_retried_after_a_timeout() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ReadTimeout("slow"),
        httpx.Response(200, content=b""),  # some stores answer a PUT with an empty body
    ]
    with make_client(scripted(answers, seen), clock) as client:
        assert client.update_product("p1", details={"is_active": False}) is None
    assert [r.method for r in seen] == ["PUT", "PUT"]
    assert client.stats().retries == 1


def test_a_refused_connection_is_retried_even_for_a_create() -> None:
    """A connection that was never made carried no request: re-sending cannot duplicate."""
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"data": "t1"}),
    ]
    with make_client(scripted(answers, seen), clock) as client:
        assert client.create_tag("summer") == "t1"
    assert len(seen) == 2


def test_pacing_spreads_requests_when_the_window_is_nearly_spent() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    low = {"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "5"}
    answers: list[httpx.Response | Exception] = [ok(**low), ok(**low), ok(**low)]
    with make_client(scripted(answers, seen), clock) as client:
        for _ in range(3):
            client.get("/api/2.0/tags")
        stats = client.stats()
    assert (stats.rate_limit, stats.rate_remaining) == (350, 5)
    # After the first answer said 5 left, each next request waits window / limit.
    assert clock.sleeps == pytest.approx([300 / 350, 300 / 350])


def test_sandbox_rate_limit_is_waited_out_not_failed() -> None:
    """Every request counts in the window (reads too): the client waits for room instead of
    drawing 429s, also for requests another app spent in the same window."""
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=RateLimit(6, 1.0))
    transport = SandboxTransport(store)
    other = httpx.Client(
        transport=transport,
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    for _ in range(4):  # another app spends most of the window first
        assert other.get("/api/2.0/brands").status_code == 200
    with Client("http://sandbox.test", TOKEN, transport=transport, rate_window=1.0) as client:
        for n in range(14):
            if n % 2:
                client.create_tag(f"tag {n}")
            else:
                client.get("/api/2.0/tags")
        stats = client.stats()
    other.close()
    assert stats.rate_limited == 0 and store.stats()["rate_limited"] == 0
    assert stats.requests == 14
    assert stats.waits >= 1
    store.close()


def test_injected_server_errors_are_survived_on_reads(store: SandboxStore) -> None:
    store.set_faults(fault_rate=0.5)
    clock = FakeTime()
    with make_client(SandboxTransport(store), clock, max_attempts=20) as client:
        for _ in range(10):
            client.get("/api/2.0/tags")
        assert client.stats().retries == store.stats()["faults_injected"] > 0


def test_paging_follows_version_max_and_stops_on_a_short_page(
    store: SandboxStore, client: Client
) -> None:
    for i in range(7):
        client.create_tag(f"tag-{i}")
    store.reset_stats()
    pages = list(client.iter_pages("tag", page_size=3))
    assert [len(p.items) for p in pages] == [3, 3, 1]
    # Page 1 taught us the store returns 3 per page, so the short page 3 ends it.
    assert store.stats()["requests"]["total"] == 3
    names = [t["name"] for p in pages for t in p.items]
    assert names == [f"tag-{i}" for i in range(7)]


def test_paging_confirms_the_end_with_an_empty_page_when_it_cannot_know(
    store: SandboxStore, client: Client
) -> None:
    for i in range(2):
        client.create_tag(f"tag-{i}")
    store.reset_stats()
    pages = list(client.iter_pages("tag", page_size=100))
    assert [len(p.items) for p in pages] == [2]
    # 2 < 100 asked, but the store might cap pages at 2: one empty page confirms the end.
    assert store.stats()["requests"]["total"] == 2
    store.reset_stats()
    list(client.iter_pages("tag", page_size=100, known_page_cap=50))
    assert store.stats()["requests"]["total"] == 1


def test_the_token_never_shows_in_repr_errors_or_logs(
    store: SandboxStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store))
    texts = [repr(client), str(client.stats())]
    calls: list[Callable[[], object]] = [
        lambda: client.get("/api/2.0/products/nope"),
        lambda: client.update_product("nope", common={"name": "x"}),
    ]
    for call in calls:
        with pytest.raises(ApiError) as info:
            call()
        texts += [str(info.value), repr(info.value), repr(info.value.body)]
    client.close()
    texts += [r.getMessage() for r in caplog.records]
    assert all(TOKEN not in t for t in texts)


def test_over_a_real_socket() -> None:
    """The same client against the sandbox served by uvicorn on 127.0.0.1."""
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=None)
    with serve_in_thread(store) as url, Client(url, TOKEN, timeout=5) as client:
        brand = client.create_brand("Acme", "Our brand")
        page = client.list_page("brand")
        assert [(b["id"], b["name"]) for b in page.items] == [(brand, "Acme")]
        with pytest.raises(ApiError) as info:
            client.get_product("00000000-0000-0000-0000-000000000000")
        assert info.value.status == 404
    store.close()


def test_over_a_real_socket_a_dropped_answer_is_a_timeout() -> None:
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=None, timeout_hold_seconds=2)
    store.set_faults(timeout_rate=1.0)
    with (
        serve_in_thread(store) as url,
        Client(url, TOKEN, timeout=0.5) as client,
        pytest.raises(TransportError, match="outcome is unknown"),
    ):
        client.create_tag("summer")
    store.close()


def test_retry_after_in_the_body_as_older_stores_sent_it() -> None:
    clock = FakeTime()
    retry_at = clock.now + 5
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(
            429,
            json={
                "error": "Too Many Requests",
                "message": "Rate limiting enforced",
                "retry-after": formatdate(retry_at, usegmt=True),
            },
        ),
        ok(),
    ]
    with make_client(scripted(answers, seen), clock) as client:
        client.get("/api/2.0/tags")
    assert clock.now == pytest.approx(retry_at, abs=0.01)


def test_a_store_that_keeps_refusing_gives_up_with_advice() -> None:
    clock = FakeTime()
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "1"})
    ] * 4
    client = make_client(scripted(answers, seen), clock, max_rate_limited=3)
    with client, pytest.raises(ApiError, match="rate limit 4 times in a row; wait a few minutes"):
        client.get("/api/2.0/tags")
    assert len(seen) == 4 and clock.now >= 1_700_000_003
