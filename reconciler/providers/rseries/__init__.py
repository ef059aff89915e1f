"""Lightspeed Retail R-Series (formerly MerchantOS), per lightspeed-rseries.md.

`client` (with `auth` and `pacing`) speaks the API; `sandbox` imitates it over SQLite. Both are
self-contained: nothing here imports the X-Series modules except the sandbox's generic transport.
"""
