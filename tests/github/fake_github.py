"""A fake of the few GitHub REST endpoints the glue uses, kept in memory.

It behaves like GitHub where it matters to us: pagination with `Link` headers (pages of at
most `per_page`, 30 by default), 422 for a body over 65,536 characters, 401 without the token,
the issues list including pull requests, labels filtering, and ids that only grow. It is served
two ways: `transport()` for an in-process `httpx.MockTransport`, and `serve()` on 127.0.0.1 for
the CLI, which builds its own client from GITHUB_API_URL.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx
from nacl.encoding import Base64Encoder
from nacl.public import PrivateKey, SealedBox

BODY_LIMIT = 65_536


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeGitHub:
    token: str = "ghs_test_token"
    repository: str = "acme/catalog"
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> issue/PR
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before serving
    base_url: str = "https://api.github.test"
    # Actions secrets as GitHub would hold them, opened with the private key only a test sees:
    # (environment or None for the repository's, name) -> value.
    secrets: dict[tuple[str | None, str], str] = field(default_factory=dict)
    _secret_key: PrivateKey = field(default_factory=PrivateKey.generate)
    _next_id: int = 1000

    # --- set-up helpers for tests ---

    def add_pull_request(
        self, number: int, *, labels: tuple[str, ...] = (), merge_sha: str | None = None
    ) -> None:
        """A pull request; `merge_sha`: it was merged as that commit (what a push sees)."""
        self.issues[number] = {
            "number": number,
            "title": f"PR {number}",
            "body": "",
            "state": "open",
            "labels": [{"name": n} for n in labels],
            "pull_request": {"url": "..."},
            "merge_commit_sha": merge_sha,
            "merged_at": "2026-01-01T00:00:00Z" if merge_sha else None,
        }

    def add_comment(self, number: int, body: str, *, user: str = "someone") -> int:
        self._next_id += 1
        self.comments[self._next_id] = {
            "id": self._next_id,
            "issue": number,
            "body": body,
            "user": {"login": user},
        }
        return self._next_id

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == number]

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    # --- the API ---

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        self.requests.append((method, path))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return Reply(status, {"message": f"injected {status}"})
        if headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "Bad credentials"})
        prefix = f"/repos/{self.repository}"
        if not path.startswith(prefix + "/"):
            return Reply(404, {"message": "Not Found"})
        parts = path[len(prefix) + 1 :].split("/")
        if isinstance(body, dict) and len(str(body.get("body") or "")) > BODY_LIMIT:
            return Reply(422, {"message": "Validation Failed: body is too long"})
        match (method, parts):
            case ("GET", ["issues", number, "comments"]):
                items = [self._comment_json(c) for c in self.comments_on(int(number))]
                return self._page(path, query, items)
            case ("POST", ["issues", number, "comments"]):
                if int(number) not in self.issues:
                    return Reply(404, {"message": "Not Found"})
                new_id = self.add_comment(int(number), body["body"], user="github-actions[bot]")
                return Reply(201, self._comment_json(self.comments[new_id]))
            case ("PATCH", ["issues", "comments", cid]):
                if int(cid) not in self.comments:
                    return Reply(404, {"message": "Not Found"})
                self.comments[int(cid)]["body"] = body["body"]
                return Reply(200, self._comment_json(self.comments[int(cid)]))
            case ("DELETE", ["issues", "comments", cid]):
                if self.comments.pop(int(cid), None) is None:
                    return Reply(404, {"message": "Not Found"})
                return Reply(204)
            case ("GET", ["commits", sha, "pulls"]):
                items = [i for i in self.issues.values() if i.get("merge_commit_sha") == sha]
                return self._page(path, query, items)
            case ("GET", ["issues"]):
                items = [
                    i
                    for i in sorted(self.issues.values(), key=lambda i: -i["number"])
                    if query.get("state", "open") in ("all", i["state"])
                    and all(
                        wanted in [lb["name"] for lb in i["labels"]]
                        for wanted in filter(None, query.get("labels", "").split(","))
                    )
                ]
                return self._page(path, query, items)
            case ("POST", ["issues"]):
                number = max(self.issues, default=0) + 1
                self.issues[number] = {
                    "number": number,
                    "title": body["title"],
                    "body": body.get("body", ""),
                    "state": "open",
                    "labels": [{"name": n} for n in body.get("labels", [])],
                }
                return Reply(201, self.issues[number])
            case ("PATCH", ["issues", number]):
                issue = self.issues.get(int(number))
                if issue is None:
                    return Reply(404, {"message": "Not Found"})
                for key in ("title", "body", "state", "state_reason"):
                    if key in body:
                        issue[key] = body[key]
                return Reply(200, issue)
            case ("GET", ["pulls"]):
                owner = self.repository.split("/")[0]
                items = [
                    i
                    for i in sorted(self.issues.values(), key=lambda i: -i["number"])
                    if "pull_request" in i
                    and query.get("state", "open") in ("all", i["state"])
                    and query.get("head", f"{owner}:{i.get('head', {}).get('ref')}")
                    == f"{owner}:{i.get('head', {}).get('ref')}"
                ]
                return self._page(path, query, items)
            case ("POST", ["pulls"]):
                number = max(self.issues, default=0) + 1
                self.issues[number] = {
                    "number": number,
                    "title": body["title"],
                    "body": body.get("body", ""),
                    "state": "open",
                    "labels": [],
                    "head": {"ref": body["head"]},
                    "base": {"ref": body["base"]},
                    "pull_request": {"url": "..."},
                }
                return Reply(201, self.issues[number])
            case ("GET", ["actions", "secrets", "public-key"]) | (
                "GET",
                ["environments", _, "secrets", "public-key"],
            ):
                key = self._secret_key.public_key.encode(Base64Encoder).decode()
                return Reply(200, {"key_id": "568250167242549743", "key": key})
            case ("PUT", ["actions", "secrets", name]) | (
                "PUT",
                ["environments", _, "secrets", name],
            ):
                if body.get("key_id") != "568250167242549743":
                    return Reply(422, {"message": "Bad key_id"})
                sealed = base64.b64decode(body["encrypted_value"])
                environment = unquote(parts[1]) if parts[0] == "environments" else None
                created = (environment, name) not in self.secrets
                self.secrets[(environment, name)] = (
                    SealedBox(self._secret_key).decrypt(sealed).decode()
                )
                return Reply(201 if created else 204)
            case ("PATCH", ["pulls", number]):
                pull = self.issues.get(int(number))
                if pull is None or "pull_request" not in pull:
                    return Reply(404, {"message": "Not Found"})
                for key in ("title", "body", "state", "base"):
                    if key in body:
                        pull[key] = body[key]
                return Reply(200, pull)
        return Reply(404, {"message": "Not Found"})

    def pulls(self) -> list[dict[str, Any]]:
        """Pull requests opened through the API (the ones with a head branch)."""
        return [i for i in self.issues.values() if "head" in i]

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if k != "issue"}

    def _page(self, path: str, query: dict[str, str], items: list[Any]) -> Reply:
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            nxt = urlencode({**query, "page": page + 1})
            headers["Link"] = f'<{self.base_url}{path}?{nxt}>; rel="next"'
        return Reply(200, chunk, headers)

    # --- serving ---

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            query = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
            body = json.loads(request.content) if request.content else None
            reply = self.handle(
                request.method,
                request.url.path,
                query,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
            if reply.body is None:
                return httpx.Response(reply.status, headers=reply.headers)
            return httpx.Response(reply.status, json=reply.body, headers=reply.headers)

        return httpx.MockTransport(handler)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free port of 127.0.0.1; yields the base URL (for GITHUB_API_URL)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                reply = fake.handle(
                    self.command,
                    url.path,
                    {k: v[-1] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self.base_url
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
