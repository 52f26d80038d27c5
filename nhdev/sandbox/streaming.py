"""pods/exec, pods/attach, pods/portforward and pods/log, served from the kubelet.

The WebSocket protocols are the ones the official clients speak (``reference/kube-wire.md`` §1):
every message starts with a channel byte; exec uses 0 stdin, 1 stdout, 2 stderr, 3 status,
4 resize and (v5 only) 255 close; port-forward announces each of its 2N channels with a 3-byte
frame and closes the WebSocket once every port's stream has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import struct
import termios
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from nhdev.sandbox.kubelet import ContainerUnavailable
from nhdev.sandbox.podlogs import LogEntry, LogFollower, LogOptions, parse_rfc3339, render
from nhdev.sandbox.runtime import ExecProcess

if TYPE_CHECKING:
    from nhdev.sandbox.kubelet import Kubelet
    from nhdev.sandbox.store import Store

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io",)
FOLLOW_POLL_SECONDS = 0.2
DRAIN_AFTER_EXIT_SECONDS = 1.0


class BadRequest(Exception):
    """A pod I/O request the server refuses before any upgrade (HTTP 400)."""


def status_response(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def exit_status(code: int) -> dict:
    """The channel-3 Status ending an exec; clients read the exit code from causes[0]."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command, exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"invalid value for {name}: {value!r}") from None


def _frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def _message_bytes(message: Any) -> bytes | None:
    """The payload of a client message; the Python client sends stdin as TEXT frames."""
    if message.type == WSMsgType.BINARY:
        return bytes(message.data)
    if message.type == WSMsgType.TEXT:
        return str(message.data).encode()
    return None


def _set_window_size(fd: int, payload: bytes) -> None:
    size = json.loads(payload)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0))


class ExecSession:
    """Pumps one exec'd process to and from a channel WebSocket until it exits."""

    def __init__(self, ws: web.WebSocketResponse, process: ExecProcess, *, stdout: bool, stderr: bool) -> None:
        self.ws = ws
        self.process = process
        self.wanted = {STDOUT: stdout, STDERR: stderr}
        self.sent = asyncio.Lock()

    async def _send(self, channel: int, data: bytes) -> None:
        if data and (channel == ERROR or self.wanted.get(channel, True)) and not self.ws.closed:
            async with self.sent:
                await self.ws.send_bytes(_frame(channel, data))

    async def _pump_pipe(self, channel: int, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            await self._send(channel, chunk)

    async def _pump_pty(self, master: int) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(master, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                if not await self._forward_pty_output(master):
                    return
        finally:
            loop.remove_reader(master)

    async def _forward_pty_output(self, master: int) -> bool:
        """Sends what the pty has; False at its end."""
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                return True
            except OSError:  # EIO: every holder of the pty's other side is gone
                return False
            if not chunk:
                return False
            await self._send(STDOUT, chunk)

    async def _write_stdin(self, data: bytes) -> None:
        if self.process.pty_master is not None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.process.pty_master, view):]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            return
        stdin = self.process.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)
            await stdin.drain()

    async def _close_stdin(self) -> None:
        if self.process.pty_master is not None:
            await self._write_stdin(b"\x04")  # the terminal's end-of-file character
        elif self.process.process.stdin is not None:
            self.process.process.stdin.close()

    async def _read_client(self) -> None:
        async for message in self.ws:
            data = _message_bytes(message)
            if not data or len(data) < 2:
                continue
            channel, payload = data[0], data[1:]
            with contextlib.suppress(OSError, ValueError, KeyError, ConnectionError):
                if channel == STDIN:
                    await self._write_stdin(payload)
                elif channel == RESIZE and self.process.pty_master is not None:
                    _set_window_size(self.process.pty_master, payload)
                elif channel == CLOSE and payload[0] == STDIN:
                    await self._close_stdin()

    def _output_pumps(self) -> list[asyncio.Task[None]]:
        if self.process.pty_master is not None:
            return [asyncio.create_task(self._pump_pty(self.process.pty_master))]
        process = self.process.process
        assert process.stdout is not None and process.stderr is not None
        return [asyncio.create_task(self._pump_pipe(STDOUT, process.stdout)),
                asyncio.create_task(self._pump_pipe(STDERR, process.stderr))]

    async def run(self) -> None:
        pumps = self._output_pumps()
        client = asyncio.create_task(self._read_client())
        exited = asyncio.create_task(self.process.wait())
        try:
            await asyncio.wait([exited, client], return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():  # the client went away first
                return
            # Output still in the pipes; a background child holding them open is not waited for.
            await asyncio.wait(pumps, timeout=DRAIN_AFTER_EXIT_SECONDS)
            await self._send(ERROR, json.dumps(exit_status(exited.result())).encode())
            await self.ws.close()
        finally:
            self.process.kill()
            for task in [*pumps, client, exited]:
                task.cancel()
            await asyncio.gather(*pumps, client, exited, return_exceptions=True)
            self.process.close()


class PortForwardSession:
    """Forwards each requested port over its channel pair (data 2i, error 2i+1)."""

    def __init__(self, ws: web.WebSocketResponse, ports: list[int],
                 connect: Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]) -> None:
        self.ws = ws
        self.ports = ports
        self.connect = connect
        self.writers: dict[int, asyncio.StreamWriter] = {}
        # Resolved once a port's connection is made (None if it failed): the client may send
        # data right after the init frames, before the connection exists.
        self.connected: dict[int, asyncio.Future[asyncio.StreamWriter | None]] = {}

    async def _stream(self, index: int, port: int) -> None:
        connected = self.connected[index]
        try:
            reader, writer = await self.connect(port)
        except (OSError, ContainerUnavailable) as exc:
            connected.set_result(None)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            message = f"an error occurred forwarding {port} -> {port}: dial tcp4 127.0.0.1:{port}: connect: {reason}"
            await self.ws.send_bytes(_frame(2 * index + 1, message.lower().encode()))
            return
        self.writers[index] = writer
        connected.set_result(writer)
        try:
            while chunk := await reader.read(65536):
                if self.ws.closed:
                    break
                await self.ws.send_bytes(_frame(2 * index, chunk))
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _read_client(self) -> None:
        async for message in self.ws:
            data = _message_bytes(message)
            if not data or len(data) < 2 or data[0] % 2:
                continue
            connected = self.connected.get(data[0] // 2)
            writer = await connected if connected is not None else None
            if writer is not None and not writer.is_closing():
                writer.write(data[1:])
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    async def run(self) -> None:
        for index, port in enumerate(self.ports):
            for channel in (2 * index, 2 * index + 1):
                await self.ws.send_bytes(bytes([channel, port & 0xFF, port >> 8]))
        loop = asyncio.get_running_loop()
        self.connected = {i: loop.create_future() for i in range(len(self.ports))}
        streams = [asyncio.create_task(self._stream(i, port)) for i, port in enumerate(self.ports)]
        client = asyncio.create_task(self._read_client())
        try:
            all_streams: asyncio.Future[Any] = asyncio.gather(*streams)
            either: list[asyncio.Future[Any]] = [all_streams, client]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            await self.ws.close()
        finally:
            for task in [*streams, client]:
                task.cancel()
            await asyncio.gather(*streams, client, return_exceptions=True)
            for writer in self.writers.values():
                writer.close()


class PodStreams:
    """The ``PodIO`` the API routes pods/exec, attach, portforward and log to."""

    def __init__(self, store: Store, kubelet: Kubelet) -> None:
        self.store = store
        self.kubelet = kubelet

    async def _guarded(self, handler: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        from nhdev.sandbox.store import StoreError

        try:
            return await handler()
        except StoreError as exc:
            return web.json_response(exc.to_status(), status=exc.code)
        except (BadRequest, ContainerUnavailable) as exc:
            return status_response(400, "BadRequest", str(exc))

    def _pod(self, namespace: str, name: str) -> dict:
        return self.store.get("pods", namespace, name)

    @staticmethod
    def _container(pod: dict, requested: str | None, *, for_logs: bool = False) -> str:
        spec, name = pod["spec"], pod["metadata"]["name"]
        app = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        if not requested:
            if for_logs and len(app) > 1:
                choices = f"choose one of: [{' '.join(app)}]"
                if init:
                    choices += f" or one of the init containers: [{' '.join(init)}]"
                raise BadRequest(f"a container name must be specified for pod {name}, {choices}")
            return app[0]
        if requested not in app + init:
            raise BadRequest(f"container {requested} is not valid for pod {name}")
        return requested

    @staticmethod
    def _require_upgrade(request: web.Request) -> None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise BadRequest("Upgrade request required")

    async def exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        return await self._guarded(lambda: self._exec(request, namespace, name))

    async def _exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        argv = request.query.getall("command", [])
        if not argv:
            raise BadRequest("you must specify at least 1 command")
        stdin, stdout, stderr, tty = (_flag(request, k) for k in ("stdin", "stdout", "stderr", "tty"))
        if not (stdin or stdout or stderr):
            raise BadRequest("you must specify at least one of stdin, stdout, stderr")
        container = self._container(self._pod(namespace, name), request.query.get("container"))
        self._require_upgrade(request)
        process = await self.kubelet.exec_in(namespace, name, container, list(argv), tty=tty, stdin=stdin)
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0)
        try:
            await ws.prepare(request)
        except BaseException:
            process.kill()
            process.close()
            raise
        await ExecSession(ws, process, stdout=stdout, stderr=stderr and not tty).run()
        return ws

    async def attach(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        return await self._guarded(lambda: self._attach(request, namespace, name))

    async def _attach(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        container = self._container(self._pod(namespace, name), request.query.get("container"))
        if _flag(request, "stdin"):
            raise BadRequest("the sandbox attaches to a container's output only; stdin is not supported")
        self.kubelet.container_process(namespace, name, container)
        self._require_upgrade(request)
        path = self.kubelet.log_path(namespace, name, container)
        follower = LogFollower(path, path.stat().st_size if path.exists() else 0)
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS)
        await ws.prepare(request)
        closed = asyncio.create_task(ws.receive())  # the client closing ends the attach
        try:
            while not closed.done():
                entries = follower.read_new()
                for entry in entries:
                    channel = STDERR if entry.stream == "stderr" else STDOUT
                    await ws.send_bytes(_frame(channel, entry.text + (b"\n" if entry.complete else b"")))
                if not entries and not self.kubelet.log_is_live(path):
                    await ws.send_bytes(_frame(ERROR, json.dumps(exit_status(0)).encode()))
                    break
                await asyncio.wait([closed], timeout=FOLLOW_POLL_SECONDS)
        finally:
            closed.cancel()
            await ws.close()
        return ws

    async def portforward(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        return await self._guarded(lambda: self._portforward(request, namespace, name))

    async def _portforward(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        ports = []
        for value in request.query.getall("ports", []):
            for part in value.split(","):
                if not part.strip().isdigit() or not 0 < int(part) < 65536:
                    raise BadRequest(f"invalid port: {part!r}")
                ports.append(int(part))
        if not ports:
            raise BadRequest("at least one port must be given in the ports parameter")
        self._pod(namespace, name)
        self._require_upgrade(request)

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            sock = await self.kubelet.open_port(namespace, name, port)
            return await asyncio.open_connection(sock=sock)

        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        await PortForwardSession(ws, ports, connect).run()
        return ws

    async def log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        return await self._guarded(lambda: self._log(request, namespace, name))

    def _log_options(self, request: web.Request) -> LogOptions:
        since: float | None = None
        if (seconds := _int_param(request, "sinceSeconds")) is not None:
            since = time.time() - seconds
        elif request.query.get("sinceTime"):
            try:
                since = parse_rfc3339(request.query["sinceTime"])
            except ValueError:
                raise BadRequest(f"invalid sinceTime: {request.query['sinceTime']!r}") from None
        return LogOptions(tail_lines=_int_param(request, "tailLines"), since_seconds=since,
                          timestamps=_flag(request, "timestamps"), limit_bytes=_int_param(request, "limitBytes"))

    async def _log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self._pod(namespace, name)
        container = self._container(pod, request.query.get("container"), for_logs=True)
        path = self.kubelet.log_path(namespace, name, container, previous=_flag(request, "previous"))
        options = self._log_options(request)
        follower = LogFollower(path, 0)
        body = render(follower.read_new(), options)
        if not _flag(request, "follow"):
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        budget = options.limit_bytes
        try:
            await response.write(body)
            budget = None if budget is None else budget - len(body)
            while budget is None or budget > 0:
                entries = follower.read_new()
                if entries:
                    data = b"".join(_follow_line(entry, options.timestamps) for entry in entries)
                    data = data if budget is None else data[:budget]
                    budget = None if budget is None else budget - len(data)
                    await response.write(data)
                elif not self.kubelet.log_is_live(path):
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
            await response.write_eof()
        except ConnectionError:
            pass  # the client left
        return response


def _follow_line(entry: LogEntry, timestamps: bool) -> bytes:
    text = entry.text + (b"\n" if entry.complete else b"")
    return (entry.timestamp.encode() + b" " + text) if timestamps else text

