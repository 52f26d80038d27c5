"""The sidecar's log: one line per event on stdout, flushed, readable with ``kubectl logs``."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("nhdev.sidecar")
LEVELS = ("debug", "info", "warning", "error")


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)  # StreamHandler flushes after every record
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # paramiko logs multi-line tracebacks for every half-open probe or dropped client; our own
    # events say what happened in one line, so its logger only speaks when asked for debug.
    logging.getLogger("paramiko").setLevel(logging.DEBUG if level == "debug" else logging.CRITICAL)


def event(what: str, level: int = logging.INFO, /, **fields: object) -> None:
    """Log ``what key=value ...``; values with spaces or quotes are repr()'d to stay on one line."""
    if not LOGGER.isEnabledFor(level):
        return
    parts = [what, *(f"{key}={_field(value)}" for key, value in fields.items())]
    LOGGER.log(level, " ".join(parts))


def _field(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text) or not text.isprintable():
        return repr(text)
    return text
