"""A local Lightspeed X-Series store for tests, demos and rehearsing an apply.

`SandboxStore` holds the data and rules, `SandboxTransport` serves it to an `httpx.Client` in
process, and `serve_in_thread` serves it over a real socket. See lightspeed-xseries.md for the
behaviour it imitates and what it adds under `/_sandbox/`.
"""

from reconciler.sandbox.app import build_app
from reconciler.sandbox.errors import StoreRefusal
from reconciler.sandbox.store import SandboxStore
from reconciler.sandbox.traffic import Faults, RateLimit
from reconciler.sandbox.transport import SandboxTransport, serve_forever, serve_in_thread

__all__ = [
    "Faults",
    "RateLimit",
    "SandboxStore",
    "SandboxTransport",
    "StoreRefusal",
    "build_app",
    "serve_forever",
    "serve_in_thread",
]
