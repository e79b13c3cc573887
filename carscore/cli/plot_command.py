"""carscore plot (contract). Not yet built."""

from __future__ import annotations

from typing import Annotated

import typer


def plot(sources: Annotated[list[str], typer.Argument(help="Files or folders.")]) -> None:
    """Not yet built."""
    from carscore.cli.common import usage

    raise usage("carscore plot is not built yet")
