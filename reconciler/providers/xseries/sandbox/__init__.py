"""A local Lightspeed X-Series store for tests, demos and rehearsing an apply.

`SandboxStore` holds the data and rules and builds its ASGI app; `reconciler.providers.asgi`
serves it to an `httpx.Client` in process (`SandboxTransport`) or over a real socket. See
lightspeed-xseries.md for the behaviour it imitates and what it adds under `/_sandbox/`.
"""

from reconciler.providers.xseries.sandbox.app import build_app
from reconciler.providers.xseries.sandbox.errors import StoreRefusal
from reconciler.providers.xseries.sandbox.store import SandboxStore
from reconciler.providers.xseries.sandbox.traffic import Faults, RateLimit

__all__ = [
    "Faults",
    "RateLimit",
    "SandboxStore",
    "StoreRefusal",
    "build_app",
]
