"""Start-up pays only for what a command uses (issue 15): heavy libraries are imported where
they are needed, not when the CLI loads. Checked by the modules a fresh interpreter holds after
the command, never by timing (the timings are `python -X importtime`'s and the bench's)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler.cli import COMMANDS, cli

HEAVY = ("httpx", "rich", "deepdiff", "yaml", "sqlite_utils", "jsonschema", "starlette")

_PROBE = """
import json, sys
from reconciler.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if "." not in m)), file=sys.__stderr__)
"""


def loaded_after(*args: str) -> set[str]:
    """The top-level modules a fresh interpreter has imported after running `catalog ARGS`."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_version_imports_no_heavy_library() -> None:
    loaded = loaded_after("--version")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_lazy_command_loads_under_its_own_name(name: str) -> None:
    import click

    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert command is not None and command.name == name
    assert cli.list_commands(ctx)[: len(COMMANDS)] == list(COMMANDS)


def test_a_plan_of_equal_values_never_imports_deepdiff() -> None:
    code = (
        "import sys; from reconciler.diff import diff_fields; "
        "assert diff_fields({'a': 1}, {'a': 1}) == []; print('deepdiff' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
