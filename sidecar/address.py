"""The sidecar's listen address, and the error for a command line it cannot use.

Apart from ``server.py`` so that ``nhdev-sidecar probe`` (the readiness probe, run every second)
does not import paramiko: that import alone took most of a second on a loaded node.
"""

from __future__ import annotations


class ConfigError(Exception):
    """The sidecar cannot start as asked; the message is one line for stderr."""


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:2222`` or ``[::1]:2222``."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"invalid --listen {text!r}: expected HOST:PORT")
    return host, int(port)
