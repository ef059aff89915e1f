"""Docs are tested: every command has help text and appears in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from reconciler.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        full = f"{prefix} {name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, full))
    return found


COMMANDS = _commands(cli, "catalog")


def test_the_cli_has_the_contract_commands() -> None:
    names = {name for name, _ in COMMANDS}
    for expected in ("validate", "plan", "apply", "import", "history", "sandbox serve"):
        assert f"catalog {expected}" in names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_text(name: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"{name} has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} option {param.opts[0]} has no help text"


@pytest.mark.parametrize(
    "name",
    [n for n, c in COMMANDS if n.count(" ") == 1 or n == "catalog sandbox serve"],
)
def test_every_top_level_command_appears_in_the_readme(name: str) -> None:
    assert f"`{name}" in README, f"README.md does not mention {name}"


@pytest.mark.parametrize(
    ("name", "command"),
    [(n, c) for n, c in COMMANDS if n in {"catalog plan", "catalog apply", "catalog validate"}],
)
def test_the_readme_lists_every_option_of_the_main_commands(
    name: str, command: click.Command
) -> None:
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| `{name}"))
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.opts[-1] in row or param.opts[0] in row, (
                f"README's command table does not list {name} {param.opts[0]}"
            )


def test_the_readme_gives_the_two_setup_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "./run demo" in quick
    assert "./run test" in quick
