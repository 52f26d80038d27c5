"""The ``nhdev-sidecar`` console script: ``probe`` without paramiko, anything else the server."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["probe"]:
        from sidecar.probe import probe_main

        return probe_main(given[1:])
    from sidecar.server import main as serve

    return serve(given)
