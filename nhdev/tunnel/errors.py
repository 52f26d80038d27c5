"""What the tunnel raises: every failure a user may see is a :class:`nhdev.errors.UserError`."""

from __future__ import annotations

from nhdev.errors import UserError


class TunnelError(UserError):
    """The tunnel could not do what was asked."""


class TunnelDown(TunnelError):
    """No live connection right now (connecting, reconnecting or stopped); try again later."""


class HostKeyMismatch(TunnelError):
    """The server presented a host key other than the pinned one: the connection was refused."""


class TunnelGone(TunnelError):
    """Raised by a ``connect()`` callable when there is nothing left to connect to (dev mode ended):
    the tunnel stops retrying and moves to the ``failed`` state."""
