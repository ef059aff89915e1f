"""The sandbox's error answers, shaped as the real store's JSON error bodies."""

from __future__ import annotations

from typing import Any


class StoreRefusal(Exception):
    """A request the store refuses; `body()` is what goes on the wire with `status`."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str | None = None,
        *,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or error)
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.message is not None:
            body["message"] = self.message
        if self.fields is not None:
            body["fields"] = self.fields
        return body


def bad_request(message: str) -> StoreRefusal:
    return StoreRefusal(400, "Bad Request", message)


def not_found(what: str, id: str) -> StoreRefusal:
    return StoreRefusal(404, "Not Found", f"No {what} with id {id!r}")


def invalid(fields: dict[str, Any]) -> StoreRefusal:
    """422 with a `fields` object naming each rejected field (and `*_existing_id` clashes)."""
    return StoreRefusal(422, "Validation failed", fields=fields)


def conflict(message: str) -> StoreRefusal:
    return StoreRefusal(409, "Conflict", message)
