"""The sandbox's HTTP face: X-Series routes over a `SandboxStore`, as one ASGI app that both the
in-process transport and the socket server run, so their behaviour cannot drift apart.

`TrafficGate` stands in front of every `/api/` route the way the real store's edge does: it
counts the request, checks the bearer token, applies the rate limit and injected faults, and
puts the rate-limit headers on the answer. Everything else (the `/_sandbox/` controls and the
image CDN) passes straight through, uncounted and without a token.
"""

from __future__ import annotations

import json
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.providers.asgi import DROPPED_HEADER, IN_PROCESS_KEY
from reconciler.providers.xseries.sandbox.errors import (
    StoreRefusal,
    bad_request,
    invalid,
    not_found,
)
from reconciler.providers.xseries.sandbox.store import ListQuery, SandboxStore, bool_param
from reconciler.providers.xseries.sandbox.traffic import Faults, RateLimit
from reconciler.rules import MAX_IMAGE_BYTES

_COLLECTIONS = {
    "brand": "brands",
    "supplier": "suppliers",
    "tag": "tags",
    "outlet": "outlets",
    "tax": "taxes",
}


class ApiJSONResponse(JSONResponse):
    """JSON with Decimal amounts written as numbers."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# Request limits. The X-Series API documents none of these, so each is a [choice] of the sandbox
# (in the sense of lightspeed-xseries.md): generous for any real catalog, and refused before a
# hostile request costs memory or a stack. The client must not depend on them.
# - A request body is at most MAX_BODY_BYTES: a 10 MB image (lightspeed-xseries.md §7) and its
# multipart
#   wrapping. Larger: 413 Payload Too Large, judged by Content-Length before anything is read,
#   and by counting what arrives when there is none.
# - A JSON body is application/json (or a +json type, any charset); another declared type is
#   415 Unsupported Media Type. A body without Content-Type is read as JSON (lenient to a
#   hand-written call). Image uploads take multipart/form-data only: otherwise 415.
# - JSON nests at most MAX_JSON_DEPTH levels (a family create needs 5): deeper is 400.
# - `name`, `handle`, `sku` and option values are at most MAX_NAME_CHARS characters, any other
#   text MAX_TEXT_CHARS (a description): longer is 422 naming the field.
MAX_BODY_BYTES = MAX_IMAGE_BYTES + 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_NAME_CHARS = 255
MAX_TEXT_CHARS = 65_535
_NAME_KEYS = frozenset({"name", "handle", "sku", "value", "attribute_value"})


def unsupported_media_type(message: str) -> StoreRefusal:
    return StoreRefusal(415, "Unsupported Media Type", message)


def payload_too_large() -> StoreRefusal:
    return StoreRefusal(
        413, "Payload Too Large", f"A request body can be at most {MAX_BODY_BYTES // 1048576} MB"
    )


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _json_body(request: Request) -> object:
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json_type(content_type):
        raise unsupported_media_type(
            f"Send the body as application/json, not {content_type.split(';', 1)[0].strip()}"
        )
    raw = await request.body()
    if not raw.strip():
        raise bad_request("A JSON request body is required")

    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=refuse_constant)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"Malformed JSON: {error}") from None
    _check_shape(body)
    return body


def _too_deep() -> StoreRefusal:
    return bad_request(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


def _check_shape(body: object) -> None:
    """Refuses JSON nested too deep (400) and text too long for its field (422, every field)."""
    errors: dict[str, str] = {}
    stack: list[tuple[object, str, int, str]] = [(body, "", 1, "")]
    while stack:
        value, path, depth, key = stack.pop()
        if isinstance(value, str):
            limit = MAX_NAME_CHARS if key in _NAME_KEYS else MAX_TEXT_CHARS
            if len(value) > limit:
                errors[path or "body"] = f"{key or 'text'} may be at most {limit:,} characters"
            continue
        if isinstance(value, dict):
            items: list[tuple[str, object, str]] = [
                (f"{path}.{k}" if path else str(k), v, str(k)) for k, v in value.items()
            ]
        elif isinstance(value, list):
            items = [(f"{path}[{i}]", v, key) for i, v in enumerate(value)]
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        stack.extend((v, p, depth + 1, k) for p, v, k in items)
    if errors:
        raise invalid(dict(sorted(errors.items())))


def build_app(store: SandboxStore) -> Starlette:
    """The whole sandbox as one ASGI app."""

    def ok(data: Any, status: int = 200) -> Response:
        return ApiJSONResponse({"data": data}, status_code=status)

    def path_id(request: Request) -> str:
        return str(request.path_params["id"])

    # -- plain collections ---------------------------------------------------------------

    def plain(kind: str, *, writable: bool) -> list[BaseRoute]:
        prefix = f"/api/2.0/{_COLLECTIONS[kind]}"

        async def listing(request: Request) -> Response:
            return ApiJSONResponse(store.list_plain(kind, ListQuery.parse(request.query_params)))

        async def one(request: Request) -> Response:
            return ok(store.get_plain(kind, path_id(request)))

        async def create(request: Request) -> Response:
            return ok(store.create_named(kind, await _json_body(request)))

        async def update(request: Request) -> Response:
            doc = store.update_named(kind, path_id(request), await _json_body(request))
            # Each kind answers in the shape its published schema gives.
            if kind == "brand":
                return ok({"id": doc["id"]})
            if kind == "supplier":
                return ApiJSONResponse({"id": doc["id"]})
            return ok(doc["id"])

        async def delete(request: Request) -> Response:
            id = path_id(request)
            job = store.delete_named(kind, id)
            if kind == "brand":
                return ApiJSONResponse({"payload": {"data": {"id": id, "job_id": job}}})
            return ok({"id": id, "job_id": job})

        routes: list[BaseRoute] = [Route(prefix, listing, methods=["GET"])]
        if kind != "tax":
            routes.append(Route(prefix + "/{id}", one, methods=["GET"]))
        if writable:
            routes += [
                Route(prefix, create, methods=["POST"]),
                Route(prefix + "/{id}", update, methods=["PUT"]),
                Route(prefix + "/{id}", delete, methods=["DELETE"]),
            ]
        return routes

    # -- retailer, attributes, categories, types ------------------------------------------

    async def retailer(request: Request) -> Response:
        return ok(store.retailer())

    async def attributes(request: Request) -> Response:
        return ok(store.list_attributes(deleted=bool_param(request.query_params, "deleted")))

    async def attribute(request: Request) -> Response:
        return ok(store.get_attribute(path_id(request)))

    async def create_attribute(request: Request) -> Response:
        return ok(store.create_attribute(await _json_body(request)), 201)

    async def update_attribute(request: Request) -> Response:
        return ok(store.update_attribute(path_id(request), await _json_body(request)))

    async def delete_attribute(request: Request) -> Response:
        return ok(store.delete_attribute(path_id(request)))

    async def categories(request: Request) -> Response:
        params = request.query_params
        size = ListQuery.parse({"page_size": params.get("page_size", "")}).page_size
        return ApiJSONResponse(
            store.list_categories(
                parent=params.get("parent"),
                include=params.get("include"),
                page_size=size,
                after=params.get("after"),
            )
        )

    async def bulk_categories(request: Request) -> Response:
        return ApiJSONResponse(store.bulk_categories(await _json_body(request)))

    async def delete_categories(request: Request) -> Response:
        return ApiJSONResponse(store.delete_categories(await _json_body(request)))

    async def product_types(request: Request) -> Response:
        return ApiJSONResponse(store.list_product_types(ListQuery.parse(request.query_params)))

    async def product_type(request: Request) -> Response:
        return ok(store.get_product_type(path_id(request)))

    # -- products -------------------------------------------------------------------------

    async def products(request: Request) -> Response:
        params = request.query_params
        if "sku" in params:
            return ApiJSONResponse(
                store.products_by_sku(params["sku"], base_url=_base_url(request))
            )
        return ApiJSONResponse(
            store.list_products(ListQuery.parse(params), base_url=_base_url(request))
        )

    async def product(request: Request) -> Response:
        return ok(store.get_product(path_id(request), base_url=_base_url(request)))

    async def create_products(request: Request) -> Response:
        return ok(store.create_products(await _json_body(request)))

    async def delete_product(request: Request) -> Response:
        return ok(store.delete_product(path_id(request)))

    async def delete_family(request: Request) -> Response:
        return ok(store.delete_family(path_id(request)))

    async def update_product(request: Request) -> Response:
        return ok(store.update_product(path_id(request), await _json_body(request)))

    async def add_variant(request: Request) -> Response:
        return ok(store.add_variant(await _json_body(request)))

    # -- images ---------------------------------------------------------------------------

    async def upload_image(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise unsupported_media_type(
                "Upload the image as multipart/form-data in the field 'image'"
            )
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise invalid({"image": "A file in the multipart field 'image' is required"})
            data = await upload.read(MAX_IMAGE_BYTES + 1)
        return ok(store.upload_image(path_id(request), data), 201)

    async def image(request: Request) -> Response:
        return ok(store.get_image(path_id(request), base_url=_base_url(request)))

    async def position_image(request: Request) -> Response:
        body = await _json_body(request)
        return ok(store.position_image(path_id(request), body, base_url=_base_url(request)))

    async def delete_image(request: Request) -> Response:
        store.delete_image(path_id(request))
        return Response(status_code=204)

    async def cdn(request: Request) -> Response:
        sha = str(request.path_params.get("sha", "placeholder"))
        found = store.image_bytes(sha)
        if found is None:
            raise not_found("image", sha)
        media_type, data = found
        return Response(data, media_type=media_type)

    # -- /_sandbox/ -----------------------------------------------------------------------

    async def stats(request: Request) -> Response:
        return ApiJSONResponse(store.stats())

    async def reset_stats(request: Request) -> Response:
        store.reset_stats()
        return ApiJSONResponse(store.stats())

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            store.set_faults(**_fault_changes(await _json_body(request)))
        return ApiJSONResponse(store.faults.as_json())

    async def reset(request: Request) -> Response:
        store.reset()
        return ApiJSONResponse({"status": "reset"})

    v20 = "/api/2.0"
    routes: list[BaseRoute] = [
        Route(f"{v20}/retailer", retailer, methods=["GET"]),
        *plain("outlet", writable=False),
        *plain("tax", writable=False),
        *plain("brand", writable=True),
        *plain("supplier", writable=True),
        *plain("tag", writable=True),
        Route(f"{v20}/variant_attributes", attributes, methods=["GET"]),
        Route(f"{v20}/variant_attributes", create_attribute, methods=["POST"]),
        Route(f"{v20}/variant_attributes/{{id}}", attribute, methods=["GET"]),
        Route(f"{v20}/variant_attributes/{{id}}", update_attribute, methods=["PUT"]),
        Route(f"{v20}/variant_attributes/{{id}}", delete_attribute, methods=["DELETE"]),
        Route(f"{v20}/product_types", product_types, methods=["GET"]),
        Route(f"{v20}/product_types/{{id}}", product_type, methods=["GET"]),
        Route(f"{v20}/product_categories", categories, methods=["GET"]),
        Route(f"{v20}/product_categories/bulk", bulk_categories, methods=["POST"]),
        Route(f"{v20}/product_categories/bulk", delete_categories, methods=["DELETE"]),
        Route(f"{v20}/products", products, methods=["GET"]),
        Route(f"{v20}/products", create_products, methods=["POST"]),
        Route(f"{v20}/products/{{id}}", product, methods=["GET"]),
        Route(f"{v20}/products/{{id}}", delete_product, methods=["DELETE"]),
        Route(f"{v20}/products/{{id}}/all", delete_family, methods=["DELETE"]),
        Route(f"{v20}/products/{{id}}/actions/image_upload", upload_image, methods=["POST"]),
        Route(f"{v20}/product_images/{{id}}", image, methods=["GET"]),
        Route(f"{v20}/product_images/{{id}}", position_image, methods=["PUT"]),
        Route(f"{v20}/product_images/{{id}}", delete_image, methods=["DELETE"]),
        Route("/api/2.1/products/{id}", update_product, methods=["PUT"]),
        Route("/api/2.1/products", add_variant, methods=["POST"]),
        Route("/cdn/images/{sha}/{name}", cdn, methods=["GET"]),
        Route("/cdn/placeholder/{name}", cdn, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TrafficGate, store=store, routes=routes)],
        exception_handlers={
            StoreRefusal: _api_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _server_error,
        },
    )


def _fault_changes(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    allowed = {
        "fault_rate": float,
        "timeout_rate": float,
        "burst_429_rate": float,
        "burst_seconds": float,
        "latency_ms": int,
    }
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in body.items():
        if key == "rate_limit":
            try:
                changes[key] = _rate_limit_value(value)
            except (ValueError, TypeError, KeyError) as error:
                errors[key] = f"not a rate limit: {error}"
        elif key in allowed and isinstance(value, int | Decimal) and not isinstance(value, bool):
            changes[key] = allowed[key](value)
        else:
            errors[key] = "Unknown setting or not a number"
    if not errors:
        try:
            # Validate the whole combination before anything changes.
            Faults(**{k: v for k, v in changes.items() if k != "rate_limit"})
        except ValueError as error:
            errors["faults"] = str(error)
    if errors:
        raise invalid(errors)
    return changes


def _rate_limit_value(value: object) -> RateLimit | str | None:
    if value is None or isinstance(value, str):
        if isinstance(value, str):
            RateLimit.parse(value)  # raises on nonsense before anything changes
        return value
    if isinstance(value, dict):
        return RateLimit(int(value["requests"]), float(value["seconds"]))
    raise ValueError("rate_limit must be xseries, off, N/SECONDS, null or {requests, seconds}")


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StoreRefusal)
    return ApiJSONResponse(error.body(), status_code=error.status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    title = HTTPStatus(error.status_code).phrase
    message = error.detail if error.detail != title else None
    if error.status_code == 404:
        message = f"No such endpoint: {request.method} {request.url.path}"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    body = {"error": title, "message": message or title}
    return ApiJSONResponse(body, status_code=error.status_code, headers=error.headers)


async def _client_gone(request: Request, error: Exception) -> Response:
    # The client hung up mid-request (a killed apply): nobody reads this, and the store wrote
    # nothing, so it is not a server error worth a traceback. 499 as nginx logs it.
    return Response(status_code=499)


async def _server_error(request: Request, error: Exception) -> Response:
    return ApiJSONResponse(
        {"error": "Internal Server Error", "message": f"{type(error).__name__}: {error}"},
        status_code=500,
    )


def _limited(receive: Receive) -> Receive:
    """`receive` that refuses a body growing past MAX_BODY_BYTES (one sent without a length)."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise payload_too_large()
        return message

    return limited


class TrafficGate:
    """Pure ASGI middleware for `/api/` requests: count, authenticate, limit, inject faults."""

    def __init__(self, app: ASGIApp, *, store: SandboxStore, routes: list[BaseRoute]) -> None:
        self.app = app
        self.store = store
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        """The path with `{id}` for ids, as the stats count it."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE and isinstance(route, Route):
                return route.path
        return str(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        verdict = self.store.admit(
            method=scope["method"],
            route=self._template(scope),
            authorization=Headers(scope=scope).get("authorization"),
        )
        if verdict.latency:
            await anyio.sleep(verdict.latency)
        if verdict.status is not None:
            response = ApiJSONResponse(verdict.body, verdict.status, headers=verdict.headers)
            await response(scope, receive, send)
            return

        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            response = ApiJSONResponse(payload_too_large().body(), 413, headers=verdict.headers)
            await response(scope, receive, send)
            return
        receive = _limited(receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in verdict.headers.items():
                    headers[name] = value
            await send(message)

        if not verdict.drop_response:
            await self.app(scope, receive, send_with_headers)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        if not held or held[0]["status"] >= 400:
            # Nothing was committed, so there is nothing to lose: answer normally.
            for message in held:
                await send_with_headers(message)
            return
        self.store.traffic.record_dropped_response()
        if scope.get(IN_PROCESS_KEY):
            marker = Response(status_code=504, headers={DROPPED_HEADER: "commit-then-timeout"})
            await marker(scope, receive, send)
            return
        # Over a socket: the write is committed; say nothing until the client gives up.
        with anyio.move_on_after(self.store.timeout_hold_seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
