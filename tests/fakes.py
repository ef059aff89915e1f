"""Values the tests share, importable from any folder (pytest puts the repository root on the
path): the bearer token the `store` fixture (tests/conftest.py) accepts."""

TOKEN = "apply-test-token-3b9c"
