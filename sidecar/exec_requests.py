"""An exec request on a session channel: run an allowed command, or refuse it with status 127."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from sidecar.commands import CommandIO, CommandRefused, CommandRegistry
from sidecar.confinement import Confinement
from sidecar.events import event

NOT_ALLOWED_STATUS = 127
INTERNAL_ERROR_STATUS = 70  # EX_SOFTWARE


@dataclass(frozen=True)
class ExecEnvironment:
    """What exec requests on one connection share."""

    commands: CommandRegistry
    confinement: Confinement
    connection: str  # its name in the log
    wait_for_client: Callable[[], None]  # returns once the client has answered a round trip


def start_exec(channel: paramiko.Channel, command_line: bytes, env: ExecEnvironment) -> None:
    """Run the request on its own thread; the caller (paramiko's reader) must not block."""
    threading.Thread(target=_run, args=(channel, command_line, env), name=f"exec-{env.connection}-{channel.get_id()}",
                     daemon=True).start()


def _run(channel: paramiko.Channel, command_line: bytes, env: ExecEnvironment) -> None:
    conn, chan = env.connection, channel.get_id()
    stdout, stderr = channel.makefile("wb"), channel.makefile_stderr("wb")
    try:
        command, args = env.commands.lookup(command_line)
    except CommandRefused as refused:
        event("exec refused", logging.WARNING, conn=conn, channel=chan, reason=str(refused))
        stderr.write(f"{refused}\n".encode())
        _finish(channel, (stdout, stderr), NOT_ALLOWED_STATUS, env.wait_for_client)
        return
    event("exec started", conn=conn, channel=chan, command=command.name)
    io = CommandIO(args=args, stdin=channel.makefile("rb"), stdout=stdout, stderr=stderr, confinement=env.confinement)
    try:
        status = command.handler(io)
    except Exception as exc:  # a failing command must still end its channel with a status
        event("exec failed", logging.ERROR, conn=conn, channel=chan, command=command.name, error=repr(exc))
        stderr.write(f"nhdev-sidecar {command.name}: internal error: {exc}\n".encode())
        status = INTERNAL_ERROR_STATUS
    event("exec ended", conn=conn, channel=chan, command=command.name, status=status)
    _finish(channel, (stdout, stderr), status, env.wait_for_client)


def _finish(channel: paramiko.Channel, outputs: tuple[paramiko.ChannelFile, ...], status: int,
            wait_for_client: Callable[[], None]) -> None:
    try:
        for output in outputs:
            output.flush()
        channel.send_exit_status(status)
        channel.shutdown_write()
        # paramiko answers the exec request only after our check returns, on its own thread; a
        # close that overtook that answer would make the client's exec_command fail with "Channel
        # closed". Once the client has answered a later request, the answer has gone out.
        wait_for_client()
    except OSError:
        pass  # the client went away; closing is all that is left to do
    channel.close()
