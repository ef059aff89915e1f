"""A local Lightspeed R-Series store for tests, demos and rehearsing an apply.

`RSeriesStore` holds the data and rules (lightspeed-rseries.md section 10); the X-Series
sandbox's `SandboxTransport`, `serve_in_thread` and `serve_forever` serve it unchanged, in
process or over a real socket, because the store builds its own ASGI app.
"""

from reconciler.providers.rseries.sandbox.errors import RSeriesError
from reconciler.providers.rseries.sandbox.store import RSeriesStore
from reconciler.providers.rseries.sandbox.traffic import Bucket, Faults, Tokens

__all__ = ["Bucket", "Faults", "RSeriesError", "RSeriesStore", "Tokens"]
