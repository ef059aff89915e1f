"""Whatever JSON a client sends, the sandbox answers with a 4xx JSON error or success: never a
500 (a 500 would mean the sandbox itself is broken, and clients would retry it)."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.providers.xseries.sandbox import SandboxStore, build_app

from .builders import attribute, family

ID = "00000000-0000-4000-8000-000000000000"
KEYS = st.sampled_from(
    [
        "name",
        "sku",
        "handle",
        "variants",
        "variant_definitions",
        "attribute_id",
        "value",
        "price_including_tax",
        "price_excluding_tax",
        "supply_price",
        "brand_id",
        "tag_ids",
        "product_codes",
        "type",
        "code",
        "common",
        "details",
        "variant_attribute_values",
        "attribute_value",
        "product_suppliers",
        "supplier_id",
        "categories",
        "category_ids",
        "parent_category_id",
        "payload_id",
        "payload_parent_category_id",
        "id",
        "position",
        "is_active",
        "variant_attributes",
        "rate_limit",
        "fault_rate",
        "latency_ms",
        "weight",
        "weight_unit",
        "contact",
        "description",
        "product_category_id",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.just(ID),
    st.just(""),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)
BODIES = st.dictionaries(KEYS, JSON_VALUES, max_size=6) | JSON_VALUES


@settings(
    max_examples=int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, target=st.integers(0, 9))
def test_no_body_makes_the_sandbox_fail(
    sandbox_client: httpx.Client, body: Any, target: int
) -> None:
    members = _family(sandbox_client)
    method, path = [
        ("POST", "/api/2.0/products"),
        ("PUT", f"/api/2.1/products/{members[0]}"),
        ("POST", "/api/2.1/products"),
        ("POST", "/api/2.0/product_categories/bulk"),
        ("DELETE", "/api/2.0/product_categories/bulk"),
        ("POST", "/api/2.0/brands"),
        ("PUT", "/api/2.0/suppliers/" + ID),
        ("POST", "/api/2.0/variant_attributes"),
        ("PUT", "/_sandbox/faults"),
        ("POST", "/api/2.0/tags"),
    ][target]
    response = sandbox_client.request(method, path, json=body)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    sandbox_client.put(
        "/_sandbox/faults", json={"fault_rate": 0, "timeout_rate": 0, "latency_ms": 0}
    )


def _family(client: httpx.Client) -> list[str]:
    """A live product to update. The store lives across Hypothesis examples and an example may
    have renamed or deleted things, so reuse whatever is live, else make a fresh family."""
    live = client.get("/api/2.0/products", params={"page_size": 1}).json()["data"]
    if live:
        return [live[0]["id"]]
    fresh = uuid.uuid4().hex[:8]
    return family(client, f"Tee {fresh}", attribute(client, f"Size {fresh}"), ["S", "M"])


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(sandbox: SandboxStore) -> None:
    # A killed apply drops its connection while sending a PUT: the store writes nothing and
    # answers nobody, without a 500 (and the traceback a server error logs).
    app = build_app(sandbox)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/api/2.1/products/{ID}",
        "raw_path": f"/api/2.1/products/{ID}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer sandbox-token"), (b"host", b"sandbox")],
        "server": ("sandbox", 80),
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
