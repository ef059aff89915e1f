"""One error tree for the whole product.

Every user-facing failure is a `CatalogError` whose message is one sentence that names the thing
(file:line or object) and what to do. Only `reconciler.cli.main` turns these into exit codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class CatalogError(Exception):
    """Base class: a failure the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(CatalogError):
    """The command line itself is wrong (bad option combination, missing argument)."""

    exit_code = 64


class ConfigError(CatalogError):
    """The environment or settings are wrong (no token for a live store, bad base URL)."""


class PlanFileError(CatalogError):
    """A saved plan that cannot be used: missing, unreadable, corrupt, or from a newer tool."""


class Unresolved(CatalogError):
    """A step references an object that has no id (its create failed or never happened)."""


class CatalogInvalid(CatalogError):
    """The catalog files have problems; `problems` holds every one of them."""

    def __init__(self, message: str, problems: list[object] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ApiError(CatalogError):
    """The store answered with an error we do not retry (4xx other than 429, or retries ran out)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: object = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.method = method
        self.path = path


class TransportError(ApiError):
    """The request's outcome is unknown: a timeout or connection failure after all retries."""


class Unconfirmed(ApiError):
    """The store (or something in its place) answered, but not with the documented success
    shape: a redirect, an empty or cut-off body, HTML, or no id. Nothing counts as done; for a
    create the outcome is unknown, so its intent stays open and the next run looks it up."""


class StalePlan(CatalogError):
    """A saved plan no longer matches the live store or the catalog."""


class GuardrailBroken(CatalogError):
    """A plan breaks a guardrail that neither the catalog nor the command line allows."""


class LockHeld(CatalogError):
    """Another apply holds the store's lock."""


class ApplyFailed(CatalogError):
    """Apply finished with at least one failed change (a partial failure)."""


class StateError(CatalogError):
    """The SQLite state file is unreadable or from a newer version of this tool."""


# What an Authorization value looks like wherever a server may quote it back: after `Bearer`,
# or after an `Authorization` key in a header line, a JSON body or a query string.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[^\s\"'<>,;&)}\]]+")
_AUTHORIZATION = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\b|\*\*\*)"
    r"(?:(?:basic|token|digest|apikey)\s+)?[^\s\"'<>,;&)}\]]+"
)
REDACTED = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without any secret in it: each of `secrets` (the token), any `Bearer ...` value
    and any `Authorization` value become ***. Every message, result and ledger row passes
    through this before it is printed or stored (design invariant 7)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def redact_json(value: object, secrets: Iterable[str] = ()) -> object:
    """`redact` applied to every string inside a JSON value (keys included)."""
    found = tuple(secrets)
    if isinstance(value, str):
        return redact(value, found)
    if isinstance(value, list):
        return [redact_json(v, found) for v in value]
    if isinstance(value, dict):
        return {redact(str(k), found): redact_json(v, found) for k, v in value.items()}
    return value


class GitHubError(CatalogError):
    """GitHub's API or git refused something; the message says what and how to fix it."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitError(GitHubError):
    """A git command failed; `stderr` is its full output (for telling a race from a refusal)."""

    def __init__(self, message: str, *, status: int | None = None, stderr: str = "") -> None:
        super().__init__(message, status=status)
        self.stderr = stderr
