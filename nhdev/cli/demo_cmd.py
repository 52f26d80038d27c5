"""``nhdev demo``: a guided tour on the embedded sandbox cluster. Grows with every capability."""

from __future__ import annotations

import click


@click.command()
@click.option("--keep", is_flag=True, help="Leave the sandbox and the demo app running afterwards.")
def demo(keep: bool) -> None:
    """Run the guided demo on the embedded sandbox cluster."""
    from nhdev.demo import run_demo

    run_demo(keep=keep)
