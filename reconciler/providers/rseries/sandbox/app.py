"""The R-Series sandbox's HTTP face: the routes of lightspeed-rseries.md section 10 over an
`RSeriesStore`, as one ASGI app that the X-Series sandbox's in-process transport and socket
servers run unchanged (`reconciler.providers.asgi`).

Every `/API/` route goes through `_gate`, the real edge's order: count the request, check the
bearer token, charge the leaky bucket by the request's cost, inject faults, then answer with the
bucket headers. The OAuth token endpoint is counted but neither charged nor faulted [choice];
`/_sandbox/` controls and the image CDN pass straight through, uncounted.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconciler.providers.asgi import DROPPED_HEADER, IN_PROCESS_KEY
from reconciler.providers.rseries.sandbox.errors import RSeriesError, bad_request, not_found
from reconciler.providers.rseries.sandbox.store import (
    MAX_IMAGE_BYTES,
    RESOURCES,
    RSeriesStore,
    cost_of,
)
from reconciler.providers.rseries.sandbox.traffic import Bucket, Faults

Handler = Callable[[Request, Any], Awaitable[Any]]
ACCOUNT = "/API/V3/Account/{accountID}"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _refusal(error: RSeriesError, headers: dict[str, str]) -> Response:
    out = dict(headers)
    if error.allow:
        out["Allow"] = error.allow
    return Response(
        json.dumps(error.body(), separators=(",", ":")),
        status_code=error.status,
        headers=out,
        # The recorded 400 and 405 answers carry a JSON body labelled text/html.
        media_type="text/html; charset=UTF-8" if error.html else "application/json",
    )


def _parse_json(raw: bytes) -> object:
    if not raw.strip():
        raise bad_request("A JSON request body is required.")
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def build_app(store: RSeriesStore) -> Starlette:
    """The whole R-Series sandbox as one ASGI app."""

    def route(
        method: str, template: str, kind: str | None, single: bool, handler: Handler
    ) -> Route:
        """`handler` behind the gate; `template` is also the stats key, `single` says whether
        loaded relations cost single-read or query rates."""

        async def endpoint(request: Request) -> Response:
            multipart = request.headers.get("content-type", "").startswith("multipart/")
            raw = b"" if multipart else await request.body()
            body: object = None
            if raw.strip():
                try:
                    body = json.loads(raw, parse_float=Decimal)
                except (ValueError, UnicodeDecodeError):
                    body = None
            cost = cost_of(method, kind, params=request.query_params, body=body, single=single)
            verdict = store.admit(
                method=method,
                route=template,
                cost=cost,
                authorization=request.headers.get("authorization"),
            )
            if verdict.latency:
                await anyio.sleep(verdict.latency)
            if verdict.status is not None:
                return _json(verdict.body, verdict.status, verdict.headers)
            try:
                if "accountID" in request.path_params:
                    store.check_account(str(request.path_params["accountID"]))
                answer = await handler(request, raw)
            except RSeriesError as error:
                return _refusal(error, verdict.headers)
            response = _json(answer, 200, verdict.headers)
            if not verdict.drop_response:
                return response
            store.traffic.record_dropped_response()
            if request.scope.get(IN_PROCESS_KEY):
                return Response(status_code=504, headers={DROPPED_HEADER: "commit-then-timeout"})
            # Over a socket: the write is committed; say nothing until the client gives up.
            with anyio.move_on_after(store.timeout_hold_seconds):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
            return Response(status_code=504)

        return Route(template, endpoint, methods=[method])

    routes: list[BaseRoute] = []

    async def account(request: Request, raw: bytes) -> Any:
        return store.account()

    routes.append(route("GET", "/API/V3/Account.json", None, True, account))

    for kind in RESOURCES:
        routes += _resource_routes(store, kind, route)

    async def unknown(request: Request, raw: bytes) -> Any:
        raise not_found("Resource", request.url.path)

    for method in ("GET", "POST", "PUT", "DELETE"):
        routes.append(route(method, "/API/{rest:path}", None, True, unknown))

    async def token(request: Request) -> Response:
        store.traffic.count(method="POST", route="/auth/oauth/token")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(await request.body())
            except ValueError:
                parsed = None
            form = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        else:
            async with request.form() as data:
                form = {k: v for k, v in data.items() if isinstance(v, str)}
        status, body = store.tokens.grant(form)
        return _json(body, status, {"Cache-Control": "no-store"})

    async def cdn(request: Request) -> Response:
        rest = str(request.path_params["rest"])
        found = store.image_bytes(rest.removesuffix(".jpg"))
        if found is None:
            return _json(not_found("Image", rest).body(), 404)
        media_type, data = found
        return Response(data, media_type=media_type)

    async def stats(request: Request) -> Response:
        return _json(store.stats())

    async def reset_stats(request: Request) -> Response:
        store.reset_stats()
        return _json(store.stats())

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                store.set_faults(**_fault_changes(_parse_json(await request.body())))
            except RSeriesError as error:
                return _refusal(error, {})
        return _json(store.faults.as_json())

    async def reset(request: Request) -> Response:
        store.reset()
        return _json({"status": "reset"})

    async def expire_tokens(request: Request) -> Response:
        store.tokens.expire_access_tokens()
        return _json({"status": "expired"})

    routes += [
        Route("/auth/oauth/token", token, methods=["POST"]),
        Route("/cdn/rseries/{rest:path}", cdn, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/tokens/expire", expire_tokens, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={ClientDisconnect: _client_gone, Exception: _server_error},
    )


RouteMaker = Callable[[str, str, str | None, bool, Handler], Route]


def _resource_routes(store: RSeriesStore, kind: str, route: RouteMaker) -> list[Route]:
    collection = f"{ACCOUNT}/{kind}.json"
    member = f"{ACCOUNT}/{kind}/{{id}}.json"

    def ident(request: Request) -> str:
        return str(request.path_params["id"])

    async def listing(request: Request, raw: bytes) -> Any:
        return store.query(
            kind,
            request.query_params.multi_items(),
            base_url=_base_url(request),
            path=request.url.path,
        )

    async def one(request: Request, raw: bytes) -> Any:
        return store.get_one(
            kind, ident(request), request.query_params, base_url=_base_url(request)
        )

    async def create(request: Request, raw: bytes) -> Any:
        if kind == "Image":
            return await _upload(store, request, None, None)
        return store.create(kind, _parse_json(raw), base_url=_base_url(request))

    async def update(request: Request, raw: bytes) -> Any:
        return store.update(kind, ident(request), _parse_json(raw), base_url=_base_url(request))

    async def delete(request: Request, raw: bytes) -> Any:
        return store.delete(kind, ident(request), base_url=_base_url(request))

    routes = [
        route("GET", collection, kind, False, listing),
        route("POST", collection, kind, True, create),
        route("GET", member, kind, True, one),
        route("PUT", member, kind, True, update),
        route("DELETE", member, kind, True, delete),
    ]
    if kind in {"Item", "ItemMatrix"}:

        async def upload(request: Request, raw: bytes) -> Any:
            return await _upload(store, request, kind, ident(request))

        routes.append(route("POST", f"{ACCOUNT}/{kind}/{{id}}/Image.json", "Image", True, upload))
    return routes


async def _upload(
    store: RSeriesStore, request: Request, owner: str | None, owner_id: str | None
) -> Any:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise bad_request("Upload an image as multipart/form-data: a data part and an image part.")
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise bad_request("Image not created. A file in the multipart part image is required.")
        data_part = form.get("data")
        data: object = None
        if isinstance(data_part, str) and data_part.strip():
            data = _parse_json(data_part.encode())
        content = await upload.read(MAX_IMAGE_BYTES + 1)
        filename = upload.filename or "image"
        media_type = upload.content_type or "application/octet-stream"
    if owner is None:
        # POST /Image.json names its owner in the data part.
        fields = data if isinstance(data, dict) else {}
        for key, kind in (("itemMatrixID", "ItemMatrix"), ("itemID", "Item")):
            value = str(fields.get(key) or "0")
            if value != "0":
                owner, owner_id = kind, value
                break
        else:
            raise bad_request("Image not created. Give an itemID or itemMatrixID in the data.")
    assert owner_id is not None
    return store.upload_image(
        owner,
        owner_id,
        data,
        filename=filename,
        content=content,
        media_type=media_type,
        base_url=_base_url(request),
    )


def _fault_changes(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    allowed = {
        "fault_rate": float,
        "timeout_rate": float,
        "burst_429_rate": float,
        "burst_seconds": float,
        "latency_ms": int,
    }
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in body.items():
        if key == "rate_limit":
            if value is not None and not isinstance(value, str):
                problems.append("rate_limit must be rseries, off, SIZE/DRIPS_PER_SECOND or null")
                continue
            try:
                changes[key] = None if value is None else Bucket.parse(value)
            except ValueError as error:
                problems.append(str(error))
        elif key in allowed and isinstance(value, int | Decimal) and not isinstance(value, bool):
            changes[key] = allowed[key](value)
        else:
            problems.append(f"{key}: unknown setting or not a number")
    if not problems:
        try:
            Faults(**{k: v for k, v in changes.items() if k != "rate_limit"})
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise bad_request("; ".join(problems) + ".")
    return changes


async def _client_gone(request: Request, error: Exception) -> Response:
    # The client hung up mid-request: nobody reads this. 499 as nginx logs it.
    return Response(status_code=499)


async def _server_error(request: Request, error: Exception) -> Response:
    body = {
        "httpCode": "500",
        "httpMessage": "Internal Server Error",
        "message": f"{type(error).__name__}: {error}",
        "errorClass": "Exception",
    }
    return _json(body, 500)
