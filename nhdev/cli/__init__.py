"""The ``nhdev`` command. Wiring only: each command group lives in its own module."""

from __future__ import annotations

import sys

from nhdev.cli.root import cli


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="nhdev", standalone_mode=True)


__all__ = ["cli", "main"]

if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
