"""The command line: the only module that imports click. Each command calls into the library."""

from __future__ import annotations

import click


@click.group()
def cli() -> None:
    """Catalog-as-code for Lightspeed Retail X-Series stores."""


def main() -> None:
    cli()
