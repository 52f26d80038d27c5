"""Container probes (exec, httpGet, tcpSocket) and the loop that turns results into state.

httpGet and tcpSocket connect from inside the pod's network namespace (the pod's 127.0.0.1),
through the runtime. Thresholds and timing follow the kubelet's prober: a probe's state changes
only after ``successThreshold`` consecutive successes or ``failureThreshold`` consecutive failures.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

USER_AGENT = "kube-probe/1.32"


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    message: str = ""


class ProbeTarget(Protocol):
    """What a probe needs from the kubelet: run a command in the container, reach a pod port."""

    async def exec_output(self, argv: list[str], timeout: float) -> tuple[int, str]: ...

    async def connect(self, port: int, timeout: float) -> socket.socket: ...


def resolve_port(port: int | str, container: dict) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of container {container.get('name')!r}")


async def _http_get(target: ProbeTarget, action: dict, port: int, timeout: float) -> ProbeResult:
    sock = await target.connect(port, timeout)
    tls = None
    if (action.get("scheme") or "HTTP").upper() == "HTTPS":
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the kubelet does not verify either
    reader, writer = await asyncio.open_connection(sock=sock, ssl=tls, server_hostname="127.0.0.1" if tls else None)
    try:
        headers = {"Host": f"{action.get('host') or '127.0.0.1'}:{port}", "User-Agent": USER_AGENT,
                   "Accept": "*/*", "Connection": "close"}
        for header in action.get("httpHeaders") or []:
            headers[header["name"]] = header["value"]
        request = f"GET {action.get('path') or '/'} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(request.encode())
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace").strip()
    finally:
        writer.close()
    parts = status_line.split(" ", 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if 200 <= code < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {code}")


async def _check(probe: dict, container: dict, target: ProbeTarget, timeout: float) -> ProbeResult:
    if "exec" in probe:
        code, output = await target.exec_output(list(probe["exec"].get("command") or []), timeout)
        return ProbeResult(code == 0, output.strip() if code else "")
    if "httpGet" in probe:
        action = probe["httpGet"]
        return await _http_get(target, action, resolve_port(action["port"], container), timeout)
    if "tcpSocket" in probe:
        port = resolve_port(probe["tcpSocket"]["port"], container)
        sock = await target.connect(port, timeout)
        sock.close()
        return ProbeResult(True)
    return ProbeResult(False, f"probe kind {sorted(probe)} is not supported by the sandbox")


async def check_probe(probe: dict, container: dict, target: ProbeTarget) -> ProbeResult:
    """One run of a probe; any failure to reach the container is a failed probe."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        async with asyncio.timeout(timeout + 0.5):
            return await _check(probe, container, target, timeout)
    except TimeoutError:
        return ProbeResult(False, f"timeout: probe did not answer within {timeout:g}s")
    except (OSError, ValueError, ssl.SSLError) as exc:
        port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
        return ProbeResult(False, f"dial tcp 127.0.0.1:{port}: {exc.strerror if isinstance(exc, OSError) else exc}")


class ProbeWorker:
    """Runs one probe of one container instance until cancelled.

    ``on_change(healthy, message)`` is called when the thresholded state flips (and with the
    failure message on every failure while unhealthy, for events). The initial state is
    ``initially_healthy`` (liveness: healthy; readiness and startup: not yet).
    """

    def __init__(self, kind: str, probe: dict, container: dict, target: ProbeTarget, *,
                 initially_healthy: bool, on_change: Callable[[bool, str], Awaitable[None] | None],
                 on_failure: Callable[[str], None]) -> None:
        self.kind = kind
        self.probe = probe
        self.container = container
        self.target = target
        self.healthy = initially_healthy
        self.on_change = on_change
        self.on_failure = on_failure

    async def run(self) -> None:
        await asyncio.sleep(float(self.probe.get("initialDelaySeconds") or 0))
        period = float(self.probe.get("periodSeconds") or 10)
        successes = failures = 0
        while True:
            result = await check_probe(self.probe, self.container, self.target)
            if result.success:
                successes, failures = successes + 1, 0
                if not self.healthy and successes >= int(self.probe.get("successThreshold") or 1):
                    await self._flip(True, "")
            else:
                successes, failures = 0, failures + 1
                self.on_failure(f"{self.kind} probe failed: {result.message}")
                if self.healthy and failures >= int(self.probe.get("failureThreshold") or 3):
                    await self._flip(False, result.message)
                elif not self.healthy and self.kind == "Startup" and failures >= int(
                        self.probe.get("failureThreshold") or 3):
                    await self._flip(False, result.message)  # startup never succeeded: give up
            await asyncio.sleep(period)

    async def _flip(self, healthy: bool, message: str) -> None:
        self.healthy = healthy
        outcome = self.on_change(healthy, message)
        if outcome is not None:
            await outcome
