"""The R-Series sandbox's refusals, in the recorded `httpCode` envelope (section 5)."""

from __future__ import annotations

from reconciler.providers.rseries.sandbox.traffic import error_body

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
}


class RSeriesError(Exception):
    """A request the store refuses. Validation refusals go out as `text/html` with a JSON body,
    as the recorded 400 and 405 answers did; `allow` fills the 405's `Allow` header."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_class: str = "Exception",
        html: bool = True,
        allow: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_class = error_class
        self.html = html
        self.allow = allow

    def body(self) -> dict[str, str]:
        return error_body(
            self.status, _TITLES.get(self.status, "Error"), self.message, self.error_class
        )


def bad_request(message: str) -> RSeriesError:
    return RSeriesError(400, message)


def not_found(resource: str, id: str) -> RSeriesError:
    # [choice] no 404 was recorded: the envelope of the others, as JSON.
    return RSeriesError(
        404, f"{resource} {id} not found.", error_class="NotFoundException", html=False
    )


def not_allowed(allow: str) -> RSeriesError:
    return RSeriesError(405, "The requested resource does not allow that action.", allow=allow)
