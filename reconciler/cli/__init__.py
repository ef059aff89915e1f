"""The command line: the only package that imports click.

Each command lives in its own module and is a thin call into the library plus rendering.
Only `main()` exits: it maps the `CatalogError` tree to exit codes, Ctrl-C to 130, and anything
unexpected to a one-line message with a hint to rerun with `--debug` (which shows the traceback).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import click

from reconciler.cli.common import Context, env_secrets, stderr_console
from reconciler.errors import CatalogError, redact

# The commands, one module each, in help order: imported only when a command runs or help
# lists them, so `catalog --version` and every command pay only for what they use (issue 15).
COMMANDS: dict[str, str] = {
    "validate": "reconciler.cli.validate:validate",
    "plan": "reconciler.cli.plan:plan",
    "apply": "reconciler.cli.apply:apply",
    "pull": "reconciler.cli.pull:pull_command",
    "merge": "reconciler.cli.merge:merge_command",
    "history": "reconciler.cli.history:history",
    "import": "reconciler.cli.import_:import_",
    "ci": "reconciler.cli.ci:ci",
    "sandbox": "reconciler.cli.sandbox:sandbox",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name, each imported from `COMMANDS` when first looked up (click's
    own pattern for lazy loading); iterated in `COMMANDS` order, then any added by hand."""

    def __init__(self) -> None:
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attr = COMMANDS[name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command) and command.name == name, COMMANDS[name]
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (n for n in self._loaded if n not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for n in self._loaded if n not in COMMANDS)


class LazyGroup(click.Group):
    """A group whose subcommands load when used (`LazyCommands`), listed in help order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--catalog",
    "catalog_dir",
    envvar="CATALOG_DIR",
    default="catalog",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding the catalog YAML files.",
)
@click.option(
    "--state",
    "state_path",
    envvar="CATALOG_STATE",
    default=".catalog/state.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="SQLite state file (live-object cache, ledger, lock).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour in text output (NO_COLOR is honoured in auto mode).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.version_option(package_name="lightspeed-catalog")
@click.pass_context
def cli(ctx: click.Context, catalog_dir: str, state_path: str, color: str, debug: bool) -> None:
    """Catalog-as-code for Lightspeed Retail X-Series stores.

    Declare products, variants and images in YAML; `catalog plan` shows exactly what differs
    from the live store and `catalog apply` makes exactly those changes.
    """
    ctx.obj = Context.create(
        catalog_dir=catalog_dir, state_path=state_path, color=color, debug=debug
    )
    _invocation["state"] = state_path


# What main() needs to name in a message after the command's context is gone.
_invocation: dict[str, str] = {}


def _translated(exc: BaseException) -> CatalogError | None:
    """A failure of the machine rather than of the command, as one sentence: the state file
    (SQLite: damaged, locked, read-only, disk full) or any file that could not be written."""
    import sqlite3

    from reconciler.state import state_failure

    if isinstance(exc, sqlite3.Error):
        return state_failure(exc, _invocation.get("state", ".catalog/state.db"))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        what = exc.filename or _invocation.get("state", "a file")
        return CatalogError(
            f"Could not write {what} ({exc.strerror}): the disk is full or a file-size limit "
            "(ulimit -f) was reached; free space and rerun."
        )
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        what = exc.filename or "a file"
        return CatalogError(
            f"Could not use {what} ({exc.strerror}): check the path and its permissions, "
            "then rerun."
        )
    return None


def _clean(message: str) -> str:
    """What may be printed of an error: no secret, no Authorization value (a server may have
    quoted one back), on one line."""
    return " ".join(redact(message, env_secrets(os.environ)).split())


def interrupted_inside(exc: BaseException) -> bool:
    """Whether a Ctrl-C is what really stopped us: Python wraps an interrupt that lands in a
    class body's `__set_name__` (a dataclass being built by a lazy import, say) in a
    RuntimeError, and a library may re-raise it as its own error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the contract's codes (0, 1, 2 for a plan with changes, 64, 130)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        stderr_console().print("Interrupted.")
        sys.exit(130)
    except KeyboardInterrupt:
        stderr_console().print("Interrupted.")
        sys.exit(130)
    except click.UsageError as exc:
        exc.show()
        sys.exit(64)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1 if exc.exit_code == 2 else exc.exit_code)
    except CatalogError as exc:
        if debug:
            raise
        stderr_console().print(
            f"Error: {_clean(str(exc))}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        if interrupted_inside(exc):
            stderr_console().print("Interrupted.")
            sys.exit(130)
        if debug:
            raise
        known = _translated(exc)
        if known is not None:
            stderr_console().print(
                f"Error: {_clean(str(known))}", markup=False, highlight=False, soft_wrap=True
            )
            sys.exit(known.exit_code)
        name = type(exc).__name__
        stderr_console().print(
            f"Error: unexpected {name}: {_clean(str(exc))}. Rerun with --debug for the traceback.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
