"""The token never leaves (issue 12, point 9), even when a server quotes the Authorization
header back in its error bodies: not on stderr, not in the `--format json` result, not in the
GitHub job summary, not in the state file's `changes` table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from reconciler.errors import redact
from reconciler.providers.xseries.sandbox import SandboxStore

from .helpers import TOKEN, Cli
from .hostile import hostile_proxy


def _clean(text: str) -> None:
    assert TOKEN not in text
    assert "Bearer " + TOKEN[:6] not in text
    for line in text.splitlines():
        if "Bearer" in line:
            assert "Bearer ***" in line, line


def test_an_echoed_authorization_header_is_scrubbed_everywhere(
    store: SandboxStore, tmp_path: Path
) -> None:
    with hostile_proxy(store, "echo") as url:
        cli = Cli(tmp_path, url)
        done = cli.run("apply", "--auto-approve", "--format", "json")
    assert done.returncode == 1, done.stderr
    _clean(done.stdout)
    _clean(done.stderr)
    result = json.loads(done.stdout)
    errors = [c["error"] for c in result["changes"] if c["outcome"] == "failed"]
    assert errors and any("Authorization: Bearer ***" in e for e in errors), errors
    # The state file (pushed to the state branch in CI): no row, no byte holds the token.
    with sqlite3.connect(cli.state) as db:
        rows = db.execute("select error from changes where error is not null").fetchall()
    assert rows and all("Bearer ***" in r[0] for r in rows if "Bearer" in r[0])
    assert all(TOKEN not in r[0] for r in rows)
    for path in tmp_path.glob("state.db*"):
        assert TOKEN.encode() not in path.read_bytes()

    # The job summary quotes the apply's files; an older tool (or any step) may have left the
    # token in them, and the summary must not repeat it.
    out = tmp_path / "apply-out"
    out.mkdir()
    raw = json.loads(done.stdout)
    raw["changes"][0]["error"] = f"store said: Authorization: Bearer {TOKEN}"
    (out / "apply.json").write_text(json.dumps(raw))
    (out / "apply.err").write_text(f"Error: the server echoed {TOKEN} back.\n")
    summary = tmp_path / "summary.md"
    cli.env["GITHUB_STEP_SUMMARY"] = str(summary)
    recorded = cli.run(
        "ci", "record-apply", "--store", "acme", "--exit-code", "1", "--dir", str(out)
    )
    assert recorded.returncode == 1
    text = summary.read_text()
    assert "Apply to `acme` failed" in text
    _clean(text)
    _clean(recorded.stderr)


def test_an_echoed_header_on_a_read_is_scrubbed_from_the_error(
    store: SandboxStore, tmp_path: Path
) -> None:
    with hostile_proxy(store, "echo-reads") as url:
        cli = Cli(tmp_path, url)
        done = cli.run("plan", "--format", "json")
    assert done.returncode == 1
    _clean(done.stderr)
    assert "upstream saw Bearer ***" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_redact_takes_out_every_form_of_the_value() -> None:
    secret = "tok-12345"
    assert redact(f"x {secret} y", [secret]) == "x *** y"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact('{"authorization": "Basic dXNlcg=="}') == '{"authorization": "***"}'
    assert redact("GET /x?authorization=abc&y=1") == "GET /x?authorization=***&y=1"
    assert redact("bearer%20abc") == "bearer%20***"
    assert redact("nothing to see") == "nothing to see"
