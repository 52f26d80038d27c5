"""``nhdev demo``: a guided tour on the embedded sandbox cluster. Grows with every capability."""

from __future__ import annotations

import click


@click.command()
@click.option("--keep", is_flag=True,
              help="Leave the sandbox running and the example app in dev mode afterwards, and print the "
                   "commands to try next.")
def demo(keep: bool) -> None:
    """Run the guided demo on the embedded sandbox cluster.

    It starts the sandbox, deploys examples/python-http, puts it into replace dev mode with its
    session, runs the app with hot reload, edits a file locally and shows the pod serving the edit,
    ends dev mode, tries duplicate mode, and cleans up (unless --keep).
    """
    from nhdev.demo import run_demo

    run_demo(keep=keep)
