"""OAuth 2 for R-Series as an `httpx.Auth` flow (lightspeed-rseries.md section 2).

- An access token given up front (`LIGHTSPEED_TOKEN`) is used as is. With the refresh
  credentials (`LIGHTSPEED_CLIENT_ID`, `LIGHTSPEED_CLIENT_SECRET`, `LIGHTSPEED_REFRESH_TOKEN`)
  a missing or expiring access token is fetched first, and a 401 is answered by one refresh and
  one retry; a second 401 is returned to the caller, which fails.
- Refresh tokens rotate: every refresh returns a new pair and the old refresh token dies once
  the new access token is used. The new pair is therefore written to its own file
  (`TokenFile`, never the state database), atomically and under an exclusive lock, *before*
  the new access token is sent anywhere. A later run reads the newest pair from that file.
- The token request is form-encoded without `scope` (a 2026 report of `invalid_grant`
  otherwise). Secrets never appear in a repr or a message.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from reconciler.errors import ApiError, ConfigError

# Refresh this long before the access token's announced expiry.
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: float | None = None  # epoch seconds
    seed: str = ""  # the configured refresh token this rotation chain started from

    def __repr__(self) -> str:  # never the tokens
        return f"TokenPair(expires_at={self.expires_at!r})"


class TokenFile:
    """The newest token pair, in a file of its own (mode 0600), replaced atomically under an
    exclusive `flock` on a sibling lock file so concurrent runs never interleave."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def load(self) -> TokenPair | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise ConfigError(
                f"The R-Series token file {self.path} is unreadable; delete it and set "
                "LIGHTSPEED_REFRESH_TOKEN to a fresh refresh token."
            ) from None
        if not isinstance(data, dict) or not data.get("refresh_token"):
            return None
        expires = data.get("expires_at")
        return TokenPair(
            access_token=str(data.get("access_token") or ""),
            refresh_token=str(data["refresh_token"]),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
            seed=str(data.get("seed") or ""),
        )

    def save(self, pair: TokenPair) -> None:
        """Write atomically: a reader sees the old pair or the new one, never half of one.
        Call under `locked()`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(
                    {
                        "access_token": pair.access_token,
                        "refresh_token": pair.refresh_token,
                        "expires_at": pair.expires_at,
                        "seed": pair.seed,
                    },
                    out,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class RefreshCredentials:
    client_id: str
    client_secret: str
    refresh_token: str  # as configured; the token file may hold a newer one

    def __repr__(self) -> str:
        return f"RefreshCredentials(client_id={self.client_id!r})"


class OAuth(httpx.Auth):
    """Bearer auth that refreshes (once per request) and rotates refresh tokens safely."""

    def __init__(
        self,
        *,
        token_url: str,
        access_token: str | None = None,
        refresh: RefreshCredentials | None = None,
        token_file: TokenFile | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not access_token and refresh is None:
            raise ConfigError(
                "No R-Series credentials: set LIGHTSPEED_TOKEN, or LIGHTSPEED_CLIENT_ID, "
                "LIGHTSPEED_CLIENT_SECRET and LIGHTSPEED_REFRESH_TOKEN."
            )
        if refresh is not None and token_file is None:
            raise ConfigError(
                "Refreshing R-Series tokens needs a token file to keep the rotated refresh "
                "token in; give one."
            )
        self.token_url = token_url
        self._refresh = refresh
        self._file = token_file
        self._clock = clock
        self._lock = threading.Lock()
        self._access = access_token or ""
        self._expires_at: float | None = None
        self.refreshes = 0  # how many times this flow refreshed (tests and progress read it)
        if refresh is not None and token_file is not None and not access_token:
            stored = token_file.load()
            if stored is not None and self._stored_is_current(stored):
                self._access, self._expires_at = stored.access_token, stored.expires_at

    def __repr__(self) -> str:
        return f"OAuth(token_url={self.token_url!r})"

    def secrets(self) -> list[str]:
        """Every secret this flow knows, for scrubbing messages."""
        found = [self._access]
        if self._refresh is not None:
            found += [self._refresh.client_secret, self._refresh.refresh_token]
        if self._file is not None:
            stored = self._file.load()
            if stored is not None:
                found += [stored.access_token, stored.refresh_token]
        return [s for s in found if s]

    def _stored_is_current(self, stored: TokenPair) -> bool:
        # A configured refresh token that is neither the stored one nor the one the stored
        # chain started from was put there after: it wins over the file [choice].
        assert self._refresh is not None
        configured = self._refresh.refresh_token
        return configured in {stored.seed, stored.refresh_token}

    def _expiring(self) -> bool:
        return self._expires_at is not None and self._clock() >= (
            self._expires_at - EXPIRY_MARGIN_SECONDS
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            if self._refresh is not None and (not self._access or self._expiring()):
                yield from self._do_refresh(request)
            sent_with = self._access
        request.headers["Authorization"] = f"Bearer {sent_with}"
        response = yield request
        if response.status_code != 401 or self._refresh is None:
            return
        response.read()
        with self._lock:
            if self._access == sent_with:  # nobody refreshed meanwhile
                yield from self._do_refresh(request)
            retry_with = self._access
        request.headers["Authorization"] = f"Bearer {retry_with}"
        yield request  # a second 401 goes back to the caller, which fails

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("the R-Series client is synchronous")  # pragma: no cover

    def _do_refresh(
        self, original: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Under `self._lock`: exchange the newest refresh token for a new pair and store it
        before anything uses the new access token."""
        assert self._refresh is not None and self._file is not None
        with self._file.locked():
            stored = self._file.load()
            if stored is not None and self._stored_is_current(stored):
                if (
                    stored.access_token
                    and stored.access_token != self._access
                    and not (
                        stored.expires_at is not None
                        and self._clock() >= stored.expires_at - EXPIRY_MARGIN_SECONDS
                    )
                ):
                    # Another process refreshed already: use its pair.
                    self._access, self._expires_at = stored.access_token, stored.expires_at
                    return
                refresh_token, seed = stored.refresh_token, stored.seed
            else:
                refresh_token, seed = self._refresh.refresh_token, self._refresh.refresh_token
            token_request = httpx.Request(
                "POST",
                self.token_url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": self._refresh.client_id,
                    "client_secret": self._refresh.client_secret,
                    "refresh_token": refresh_token,
                },
                headers={"Accept": "application/json", "User-Agent": _agent(original)},
            )
            response = yield token_request
            response.read()
            pair = self._pair(response, seed=seed, used=refresh_token)
            self._file.save(pair)
            self.refreshes += 1
            self._access, self._expires_at = pair.access_token, pair.expires_at

    def _pair(self, response: httpx.Response, *, seed: str, used: str) -> TokenPair:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            reason = ""
            if isinstance(body, dict):
                reason = str(body.get("error") or body.get("message") or "")
            raise ApiError(
                f"Refreshing the R-Series access token at {self.token_url} failed with "
                f"{response.status_code}{' ' + reason if reason else ''}; the refresh token "
                "was rotated or revoked, or the client id/secret is wrong: set "
                "LIGHTSPEED_REFRESH_TOKEN to a fresh refresh token and check "
                "LIGHTSPEED_CLIENT_ID and LIGHTSPEED_CLIENT_SECRET.",
                status=response.status_code,
                method="POST",
                path=self.token_url,
            )
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access:
            raise ApiError(
                f"The token endpoint {self.token_url} answered without an access token; "
                "check the base URL.",
                status=response.status_code,
            )
        expires = body.get("expires_in")
        return TokenPair(
            access_token=access,
            # Without a new refresh token the old one stays valid (no rotation this time).
            refresh_token=refresh if isinstance(refresh, str) and refresh else used,
            expires_at=self._clock() + float(expires) if isinstance(expires, int | float) else None,
            seed=seed,
        )


def _agent(request: httpx.Request) -> str:
    return str(request.headers.get("User-Agent", "lightspeed-catalog"))
