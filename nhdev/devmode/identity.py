"""Who is starting dev mode: ``user@host``, or ``$NHDEV_IDENTITY``; and fresh session ids."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from datetime import UTC, datetime


def current_identity() -> str:
    given = os.environ.get("NHDEV_IDENTITY", "").strip()
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with arbitrary uids)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def new_session_id() -> str:
    """12 lower-case hex characters: usable in object names and label values."""
    return secrets.token_hex(6)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
