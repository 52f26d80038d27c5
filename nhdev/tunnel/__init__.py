"""The tunnel: one SSH connection to the dev pod's sidecar carrying every forward, sync and exec."""

from nhdev.tunnel.client import CONNECTED, CONNECTING, FAILED, RECONNECTING, STOPPED, Tunnel, TunnelEvent
from nhdev.tunnel.errors import HostKeyMismatch, TunnelDown, TunnelError, TunnelGone
from nhdev.tunnel.forwards import ForwardBindError, ForwardStatus

__all__ = [
    "CONNECTED", "CONNECTING", "FAILED", "RECONNECTING", "STOPPED",
    "ForwardBindError", "ForwardStatus", "HostKeyMismatch", "Tunnel", "TunnelDown", "TunnelError", "TunnelEvent",
    "TunnelGone",
]
