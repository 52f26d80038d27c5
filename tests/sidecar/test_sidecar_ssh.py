"""The real ``nhdev-sidecar`` process over real SSH on loopback: auth, SFTP, forwards, exec, signals.

Nothing here connects anywhere but 127.0.0.0/8; non-loopback addresses appear only as the
destination a client *asks* for, which the sidecar must refuse before connecting.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import sidecar

SIDECAR = Path(sys.executable).parent / "nhdev-sidecar"
START_TIMEOUT = 15.0

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------- keys


PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def write_private_key(path: Path, key: PrivateKey) -> paramiko.PKey:
    """Write ``key`` in OpenSSH format, owner-only; return it as paramiko loads it."""
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return paramiko.PKey.from_path(path)


def authorized_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()} test@nhdev\n"


@dataclass
class Keys:
    dir: Path
    host: paramiko.PKey
    client: paramiko.PKey
    stranger: paramiko.PKey  # a valid key that is not authorized


@pytest.fixture()
def keys(tmp_path: Path) -> Keys:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    host = write_private_key(keydir / "ssh_host_ed25519_key", ed25519.Ed25519PrivateKey.generate())
    client = write_private_key(tmp_path / "client_key", ed25519.Ed25519PrivateKey.generate())
    stranger = write_private_key(tmp_path / "stranger_key", ed25519.Ed25519PrivateKey.generate())
    (keydir / "authorized_keys").write_text(authorized_line(client))
    return Keys(keydir, host, client, stranger)


# ---------------------------------------------------------------- the process


@dataclass
class Sidecar:
    process: subprocess.Popen[bytes]
    port: int
    root: Path
    log: Path
    keys: Keys

    def log_text(self) -> str:
        return self.log.read_text()

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_text())
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in the log:\n{self.log_text()}")


def start_sidecar(tmp_path: Path, keys: Keys, *extra: str) -> Sidecar:
    """Start the console script on a port the kernel picks, and wait until it listens."""
    root = tmp_path / "work" / "app"  # does not exist yet: the sidecar creates it
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out, (tmp_path / "sidecar.err").open("wb") as err:
        process = subprocess.Popen([str(SIDECAR), "--root", str(root), "--keys", str(keys.dir),
                                    "--listen", "127.0.0.1:0", *extra], stdout=out, stderr=err)
    handle = Sidecar(process, 0, root, log, keys)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"listening address=127\.0\.0\.1:(\d+)", handle.log_text())
        if found:
            handle.port = int(found.group(1))
            return handle
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"sidecar did not start: {(tmp_path / 'sidecar.err').read_text()}{handle.log_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def server(tmp_path: Path, keys: Keys) -> Iterator[Sidecar]:
    handle = start_sidecar(tmp_path, keys)
    yield handle
    stop(handle.process)


# ---------------------------------------------------------------- clients


def client_for(server: Sidecar, key: paramiko.PKey | None = None,
               host_key: paramiko.PKey | None = None) -> paramiko.SSHClient:
    """An SSHClient that knows only the pinned host key and refuses any other."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    pinned = host_key or server.keys.host
    client.get_host_keys().add(f"[127.0.0.1]:{server.port}", pinned.get_name(), pinned)
    client.connect("127.0.0.1", port=server.port, username="dev", pkey=key or server.keys.client,
                   look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    return client


@pytest.fixture()
def ssh(server: Sidecar) -> Iterator[paramiko.SSHClient]:
    client = client_for(server)
    yield client
    client.close()


@pytest.fixture()
def sftp(ssh: paramiko.SSHClient) -> Iterator[paramiko.SFTPClient]:
    client = ssh.open_sftp()
    yield client
    client.close()


def bare_transport(server: Sidecar) -> paramiko.Transport:
    """A transport past key exchange but not authenticated, for trying other auth methods."""
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", server.port), timeout=10))
    transport.start_client(timeout=10)
    assert transport.get_remote_server_key() == server.keys.host
    return transport


def run(client: paramiko.SSHClient, command: str) -> tuple[int, bytes, bytes]:
    _, stdout, stderr = client.exec_command(command, timeout=10)
    out, err = stdout.read(), stderr.read()
    return stdout.channel.recv_exit_status(), out, err


# ---------------------------------------------------------------- authentication


def test_the_authorized_key_logs_in(server: Sidecar, ssh: paramiko.SSHClient) -> None:
    assert run(ssh, "nhdev-sidecar version") == (0, f"nhdev-sidecar {sidecar.__version__}\n".encode(), b"")
    server.wait_for_log(rf"auth ok conn=c\d+ user=dev key={re.escape(server.keys.client.fingerprint)}")
    assert server.root.is_dir()


def test_a_key_not_authorized_is_refused(server: Sidecar) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        client_for(server, key=server.keys.stranger)
    server.wait_for_log(rf"auth refused .*key={re.escape(server.keys.stranger.fingerprint)} "
                        r"reason='key not in authorized_keys'")


@pytest.mark.parametrize("method", ["password", "keyboard-interactive", "none"])
def test_other_auth_methods_are_refused(server: Sidecar, method: str) -> None:
    transport = bare_transport(server)
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            if method == "password":
                transport.auth_password("dev", "hunter2", fallback=False)
            elif method == "keyboard-interactive":
                transport.auth_interactive("dev", lambda title, instructions, prompts: ["hunter2"] * len(prompts))
            else:
                transport.auth_none("dev")
        assert refused.value.allowed_types == ["publickey"]
        assert not transport.is_authenticated()
    finally:
        transport.close()


def test_the_client_refuses_an_unexpected_host_key(server: Sidecar) -> None:
    with pytest.raises(paramiko.BadHostKeyException):
        client_for(server, host_key=server.keys.stranger)


def test_a_rotated_authorized_keys_applies_to_the_next_login(server: Sidecar) -> None:
    (server.keys.dir / "authorized_keys").write_text(authorized_line(server.keys.stranger))
    client_for(server, key=server.keys.stranger).close()
    with pytest.raises(paramiko.AuthenticationException):
        client_for(server)


def test_a_broken_authorized_keys_lets_nobody_in(server: Sidecar) -> None:
    (server.keys.dir / "authorized_keys").write_text("ssh-ed25519 !!!\n")
    with pytest.raises(paramiko.AuthenticationException):
        client_for(server)
    server.wait_for_log(r"auth refused .*reason=.*invalid public key at .*authorized_keys:1")


def test_rsa_and_ecdsa_client_keys(tmp_path: Path, keys: Keys) -> None:
    rsa_key = write_private_key(tmp_path / "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ecdsa_key = write_private_key(tmp_path / "ecdsa", ec.generate_private_key(ec.SECP256R1()))
    lines = "# nhdev session keys\n\n" + "".join(authorized_line(k) for k in (keys.client, rsa_key, ecdsa_key))
    (keys.dir / "authorized_keys").write_text(lines)
    handle = start_sidecar(tmp_path, keys)
    try:
        for key in (rsa_key, ecdsa_key):
            client = client_for(handle, key=key)
            assert run(client, "nhdev-sidecar version")[0] == 0
            client.close()
    finally:
        stop(handle.process)


def test_an_ecdsa_host_key_alone(tmp_path: Path, keys: Keys) -> None:
    (keys.dir / "ssh_host_ed25519_key").unlink()
    host = write_private_key(keys.dir / "ssh_host_ecdsa_key", ec.generate_private_key(ec.SECP256R1()))
    keys.host = host
    handle = start_sidecar(tmp_path, keys)
    try:
        client = client_for(handle)
        assert run(client, "nhdev-sidecar version")[0] == 0
        client.close()
    finally:
        stop(handle.process)


# ---------------------------------------------------------------- SFTP inside the root


def test_sftp_put_get_list_rename_chmod(server: Sidecar, sftp: paramiko.SFTPClient, tmp_path: Path) -> None:
    local = tmp_path / "local.py"
    local.write_bytes(b"print('hello')\n" * 1000)
    sftp.mkdir("/src")
    sftp.put(str(local), "/src/a.py")
    assert (server.root / "src" / "a.py").read_bytes() == local.read_bytes()
    sftp.get("src/a.py", str(tmp_path / "back.py"))
    assert (tmp_path / "back.py").read_bytes() == local.read_bytes()
    assert sftp.listdir("/src") == ["a.py"]
    assert sftp.normalize("src/../src/./a.py") == "/src/a.py"
    assert sftp.normalize(".") == "/"

    sftp.rename("/src/a.py", "/src/b.py")
    assert sorted(sftp.listdir("src")) == ["b.py"]
    sftp.put(str(local), "/src/c.py")
    with pytest.raises(OSError):
        sftp.rename("/src/b.py", "/src/c.py")  # plain rename never replaces
    sftp.posix_rename("/src/b.py", "/src/c.py")  # posix-rename does, atomically
    assert sftp.listdir("src") == ["c.py"]

    sftp.chmod("/src/c.py", 0o750)
    assert stat.S_IMODE((server.root / "src" / "c.py").stat().st_mode) == 0o750
    sftp.utime("/src/c.py", (1_000_000_000, 1_200_000_000))
    assert sftp.stat("/src/c.py").st_mtime == 1_200_000_000
    sftp.truncate("/src/c.py", 5)
    assert (server.root / "src" / "c.py").read_bytes() == b"print"

    sftp.remove("/src/c.py")
    sftp.rmdir("/src")
    assert sftp.listdir("/") == []


def test_sftp_open_flags(server: Sidecar, sftp: paramiko.SFTPClient) -> None:
    with sftp.open("f.txt", "w") as f:
        f.write(b"one\n")
    with sftp.open("f.txt", "a") as f:
        f.write(b"two\n")
    assert (server.root / "f.txt").read_bytes() == b"one\ntwo\n"
    with pytest.raises(OSError):
        sftp.open("f.txt", "wx")  # O_CREAT | O_EXCL on an existing file
    with sftp.open("g.txt", "wx") as f:
        f.write(b"new")
    with sftp.open("f.txt", "r+") as f:
        f.seek(4)
        f.write(b"TWO")
        assert f.stat().st_size == 8
        f.truncate(7)
    assert (server.root / "f.txt").read_bytes() == b"one\nTWO"
    with sftp.open("f.txt", "w") as f:
        pass
    assert (server.root / "f.txt").read_bytes() == b""


def test_sftp_symlinks_inside_the_root(server: Sidecar, sftp: paramiko.SFTPClient) -> None:
    sftp.mkdir("lib")
    with sftp.open("lib/real.py", "w") as f:
        f.write(b"x = 1\n")
    sftp.symlink("lib/real.py", "alias.py")
    sftp.symlink("../lib", "lib/self")
    assert sftp.readlink("alias.py") == "lib/real.py"
    assert os.readlink(server.root / "alias.py") == "lib/real.py"
    assert sftp.open("alias.py").read() == b"x = 1\n"
    assert sftp.open("lib/self/self/real.py").read() == b"x = 1\n"
    assert stat.S_ISLNK(sftp.lstat("alias.py").st_mode or 0)
    assert stat.S_ISREG(sftp.stat("alias.py").st_mode or 0)
    assert sftp.normalize("alias.py") == "/lib/real.py"
    sftp.remove("alias.py")  # the link, not what it points to
    assert (server.root / "lib" / "real.py").exists()


def test_special_files_and_odd_names(server: Sidecar, sftp: paramiko.SFTPClient) -> None:
    os.mkfifo(server.root / "fifo")
    with pytest.raises(PermissionError):
        sftp.open("fifo")  # refused at once instead of waiting for a writer forever
    os.close(os.open(os.fsencode(server.root) + b"/latin1-\xe9", os.O_CREAT | os.O_WRONLY, 0o644))
    (server.root / "plain").write_text("x")
    assert sorted(sftp.listdir("/")) == ["fifo", "plain"]  # the undecodable name is skipped, not fatal
    server.wait_for_log(r"sftp skipped conn=c\d+ op=list_folder name=latin1-\\xe9 ")


def test_sftp_large_file_intact(server: Sidecar, sftp: paramiko.SFTPClient, tmp_path: Path) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    (tmp_path / "big").write_bytes(payload)
    sftp.put(str(tmp_path / "big"), "big")
    sftp.get("big", str(tmp_path / "big.back"))
    digest = hashlib.sha256(payload).hexdigest()
    assert hashlib.sha256((server.root / "big").read_bytes()).hexdigest() == digest
    assert hashlib.sha256((tmp_path / "big.back").read_bytes()).hexdigest() == digest


# ---------------------------------------------------------------- SFTP escapes


def test_dotdot_and_absolute_paths_stay_inside(server: Sidecar, sftp: paramiko.SFTPClient,
                                               tmp_path: Path) -> None:
    for path in ("../../etc/passwd", "/etc/passwd", "../../../../../../etc/passwd"):
        with pytest.raises(FileNotFoundError):
            sftp.open(path)  # ROOT/etc/passwd, which does not exist
        with pytest.raises(FileNotFoundError):
            sftp.stat(path)
    with sftp.open("../../escaped.txt", "w") as f:
        f.write(b"inside")
    assert (server.root / "escaped.txt").read_bytes() == b"inside"
    assert not (tmp_path / "escaped.txt").exists()
    assert not (server.root.parent / "escaped.txt").exists()
    assert sftp.normalize("../../..") == "/"
    with pytest.raises(PermissionError):
        sftp.rmdir("/..")  # the root itself cannot be removed or renamed


def test_a_symlink_out_of_the_root_is_not_followed(server: Sidecar, sftp: paramiko.SFTPClient) -> None:
    # As if the dev container had made them: links whose targets are outside the root.
    os.symlink("/etc", server.root / "etc_link")
    os.symlink("/", server.root / "slash")
    os.symlink("../..", server.root / "up")
    host_passwd = Path("/etc/passwd").read_bytes() if Path("/etc/passwd").exists() else None
    for path in ("etc_link/passwd", "slash/etc/passwd", "up/sidecar.log"):
        with pytest.raises(PermissionError):
            data = sftp.open(path).read()
            assert data != host_passwd
        with pytest.raises(PermissionError):
            sftp.stat(path)
        with pytest.raises(PermissionError):
            sftp.open(path, "w")
    for path in ("etc_link", "slash", "up"):
        with pytest.raises(PermissionError):
            sftp.listdir(path)
        with pytest.raises(OSError):
            sftp.normalize(path)
        with pytest.raises(PermissionError):
            sftp.chmod(path, 0o777)
    assert sftp.readlink("etc_link") == "/etc"  # the link itself may be looked at
    assert stat.S_ISLNK(sftp.lstat("slash").st_mode or 0)
    server.wait_for_log(r"sftp refused conn=c\d+ op=open reason=.*outside the root")


def test_symlinks_pointing_out_cannot_be_created(server: Sidecar, sftp: paramiko.SFTPClient) -> None:
    for target in ("/etc", "/", "..", "../../etc", "/etc/passwd"):
        with pytest.raises(PermissionError):
            sftp.symlink(target, "evil")
        assert not os.path.lexists(server.root / "evil")
    sftp.symlink(str(server.root / "inside-target"), "abs_inside")  # absolute text that stays inside
    sftp.symlink("inside-target", "../../../tmp/x/../../made_here")  # where the link goes is confined too
    assert os.readlink(server.root / "made_here") == "inside-target"


# ---------------------------------------------------------------- local forwards (direct-tcpip)


class EchoServer:
    """Echoes on 127.0.0.1 and half-closes after the client does, as a request/response peer would."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture()
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def round_trip(channel: paramiko.Channel, payload: bytes) -> bytes:
    """Send ``payload``, then EOF, while reading everything the peer sends back until its EOF."""

    def send() -> None:
        channel.sendall(payload)
        channel.shutdown_write()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = bytearray()
    while data := channel.recv(1 << 20):
        received += data
    sender.join(10)
    return bytes(received)


def test_direct_tcpip_to_loopback_carries_10_mb_intact(server: Sidecar, ssh: paramiko.SSHClient,
                                                        echo: EchoServer) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    payload = os.urandom(10 * 1024 * 1024)
    channel = transport.open_channel("direct-tcpip", ("127.0.0.1", echo.port), ("127.0.0.1", 50000), timeout=10)
    back = round_trip(channel, payload)
    assert len(back) == len(payload)
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    channel.close()
    server.wait_for_log(rf"forward closed forward=c\d+:local:127\.0\.0\.1:{echo.port} to_pod={len(payload)} "
                        rf"to_client={len(payload)} ended=eof")


def test_direct_tcpip_to_localhost_and_many_at_once(ssh: paramiko.SSHClient, echo: EchoServer) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    results: dict[int, bytes] = {}

    def one(index: int) -> None:
        channel = transport.open_channel("direct-tcpip", ("localhost", echo.port), ("127.0.0.1", 0), timeout=10)
        results[index] = round_trip(channel, f"request {index}\n".encode() * 100)
        channel.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {i: f"request {i}\n".encode() * 100 for i in range(40)}


@pytest.mark.parametrize("destination", ["10.255.255.1", "0.0.0.0", "::", "example.invalid", "169.254.169.254",
                                         "127.0.0.1.nip.io"])
def test_direct_tcpip_elsewhere_is_refused_before_connecting(server: Sidecar, ssh: paramiko.SSHClient,
                                                             destination: str) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    started = time.monotonic()
    with pytest.raises(paramiko.ChannelException) as refused:
        transport.open_channel("direct-tcpip", (destination, 80), ("127.0.0.1", 0), timeout=10)
    assert refused.value.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
    assert time.monotonic() - started < 1.0  # no connect attempt, no DNS lookup
    server.wait_for_log(rf"channel refused conn=c\d+ kind=direct-tcpip destination={re.escape(destination)}:80 "
                        r"reason='destination is not loopback inside the pod'")
    assert transport.is_active()


def test_a_pod_server_that_speaks_first_and_closes(ssh: paramiko.SSHClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def greet() -> None:
            conn, _ = listener.accept()
            conn.sendall(b"220 hello\r\n")
            conn.close()

        threading.Thread(target=greet, daemon=True).start()
        transport = ssh.get_transport()
        assert transport is not None
        channel = transport.open_channel("direct-tcpip", listener.getsockname(), ("127.0.0.1", 0), timeout=10)
        received = b""
        while data := channel.recv(100):
            received += data
        assert received == b"220 hello\r\n"  # then EOF, not a hang
        channel.close()


def test_a_client_close_ends_the_pod_connection(server: Sidecar, ssh: paramiko.SSHClient) -> None:
    """A pod server that never closes its side still sees the connection end when the client closes."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport = ssh.get_transport()
        assert transport is not None
        channel = transport.open_channel("direct-tcpip", listener.getsockname(), ("127.0.0.1", 0), timeout=10)
        conn, _ = listener.accept()
        with conn:
            channel.sendall(b"last words")
            channel.close()
            conn.settimeout(5)
            received = b""
            with contextlib.suppress(ConnectionResetError):
                while data := conn.recv(100):
                    received += data
            assert received == b"last words"
            # Still open on the pod's side: only the client's close can end the forward. (Its EOF
            # may be seen before its CLOSE: then the pod first gets a half-close, as above.)
            server.wait_for_log(r"forward closed .* ended='client closed'")


def test_direct_tcpip_to_a_closed_port_fails_to_connect(ssh: paramiko.SSHClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    transport = ssh.get_transport()
    assert transport is not None
    with pytest.raises(paramiko.ChannelException) as refused:
        transport.open_channel("direct-tcpip", ("127.0.0.1", closed_port), ("127.0.0.1", 0), timeout=10)
    assert refused.value.code == paramiko.common.OPEN_FAILED_CONNECT_FAILED


# ---------------------------------------------------------------- reverse forwards (tcpip-forward)


def test_reverse_forward_reaches_the_client(server: Sidecar, ssh: paramiko.SSHClient) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    port = transport.request_port_forward("0.0.0.0", 0)
    assert port > 0
    server.wait_for_log(rf"reverse forward listening conn=c\d+ address=0\.0\.0\.0 requested=0 "
                        rf"listen=127\.0\.0\.1:{port}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"ping from the pod")
        channel = transport.accept(10)
        assert channel is not None
        assert channel.recv(100) == b"ping from the pod"
        channel.sendall(b"pong from the laptop")
        assert conn.recv(100) == b"pong from the laptop"
        conn.shutdown(socket.SHUT_WR)
        assert channel.recv(100) == b""  # the pod side's half-close arrives as EOF
        channel.close()
    # Bound to 127.0.0.1 only, not the wildcard the client asked for: 127.0.0.2 is loopback too,
    # but a listener on 127.0.0.1 does not answer there.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
    transport.cancel_port_forward("0.0.0.0", port)
    server.wait_for_log(rf"reverse forward cancelled conn=c\d+ address=0\.0\.0\.0 port={port}")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_reverse_forward_listener_closes_with_the_connection(server: Sidecar) -> None:
    client = client_for(server)
    transport = client.get_transport()
    assert transport is not None
    port = transport.request_port_forward("localhost", 0)
    client.close()
    server.wait_for_log(r"connection closed")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# ---------------------------------------------------------------- exec, shell, pty, global requests


def test_exec_of_anything_unregistered_is_refused(server: Sidecar, ssh: paramiko.SSHClient) -> None:
    for command in ("rm -rf /", "sh -c id", "/bin/sh", "nhdev-sidecar", "nhdev-sidecar rm -rf /", "version",
                    "nhdev-sidecar 'unterminated"):
        status, out, err = run(ssh, command)
        assert status == 127, command
        assert out == b""
        assert err.startswith(b"command not allowed: ") and err.count(b"\n") == 1, err
    server.wait_for_log(r"exec refused conn=c\d+ channel=\d+ reason='command not allowed: rm -rf /'")


def test_exec_version(ssh: paramiko.SSHClient) -> None:
    assert run(ssh, "nhdev-sidecar version") == (0, f"nhdev-sidecar {sidecar.__version__}\n".encode(), b"")
    status, _, err = run(ssh, "nhdev-sidecar version --extra")
    assert (status, err) == (2, b"usage: nhdev-sidecar version\n")


def test_many_execs_in_a_row_and_at_once(ssh: paramiko.SSHClient) -> None:
    """Each exec closes its channel only after the client has its reply (see exec_requests)."""
    for _ in range(20):
        assert run(ssh, "nhdev-sidecar version")[0] == 0
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(run(ssh, "nhdev-sidecar version")[0]))
               for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [0] * 10


def test_shell_and_pty_are_refused(ssh: paramiko.SSHClient) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    channel = transport.open_session()
    with pytest.raises(paramiko.SSHException):
        channel.get_pty()
    with pytest.raises(paramiko.SSHException):
        channel.invoke_shell()
    channel.close()
    channel = transport.open_session()
    with pytest.raises(paramiko.SSHException):
        channel.invoke_subsystem("netconf")
    channel.close()


def test_keepalives_are_answered_and_unknown_requests_refused(ssh: paramiko.SSHClient) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    assert transport.global_request("keepalive@openssh.com", wait=True) is not None
    assert transport.global_request("no-such-request@nhdev.dev", wait=True) is None
    assert transport.is_active()
    assert run(ssh, "nhdev-sidecar version")[0] == 0


def test_other_channel_types_are_refused(ssh: paramiko.SSHClient) -> None:
    transport = ssh.get_transport()
    assert transport is not None
    with pytest.raises(paramiko.ChannelException) as refused:
        transport.open_x11_channel(("127.0.0.1", 6000))
    assert refused.value.code == paramiko.common.OPEN_FAILED_UNKNOWN_CHANNEL_TYPE
    with pytest.raises(paramiko.ChannelException):
        transport.open_channel("auth-agent@openssh.com", timeout=10)
    assert transport.is_active()


def test_many_connections_at_once(server: Sidecar) -> None:
    outcomes: list[int] = []

    def connect_and_run() -> None:
        client = client_for(server)
        outcomes.append(run(client, "nhdev-sidecar version")[0])
        client.close()

    threads = [threading.Thread(target=connect_and_run) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == [0] * 12


# ---------------------------------------------------------------- process life


def test_sigterm_exits_0_promptly_with_connections_open(server: Sidecar, echo: EchoServer) -> None:
    client = client_for(server)
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_channel("direct-tcpip", ("127.0.0.1", echo.port), ("127.0.0.1", 0), timeout=10)
    sftp = client.open_sftp()
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(5) == 0
    assert time.monotonic() - started < 2.0
    server.wait_for_log(r"stopped connections_closed=1")
    sftp.close()
    channel.close()
    client.close()


@pytest.mark.parametrize(("breakage", "message"), [
    ("no key dir", r"key directory .* does not exist"),
    ("no host key", r"no host key in .* \(expected one of: ssh_host_ed25519_key"),
    ("bad host key", r"invalid host key .*ssh_host_ed25519_key: "),
    ("no authorized_keys", r"cannot read .*authorized_keys: No such file or directory"),
    ("empty authorized_keys", r"no public key in .*authorized_keys"),
    ("bad authorized_keys", r"invalid public key at .*authorized_keys:2: 'ssh-ed25519'"),
    ("bad listen", r"invalid --listen '127.0.0.1': expected HOST:PORT"),
])
def test_unusable_configuration_exits_2_with_one_line(tmp_path: Path, keys: Keys, breakage: str,
                                                      message: str) -> None:
    keydir, listen = keys.dir, "127.0.0.1:0"
    if breakage == "no key dir":
        keydir = tmp_path / "missing"
    elif breakage == "no host key":
        (keys.dir / "ssh_host_ed25519_key").unlink()
    elif breakage == "bad host key":
        (keys.dir / "ssh_host_ed25519_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n")
    elif breakage == "no authorized_keys":
        (keys.dir / "authorized_keys").unlink()
    elif breakage == "empty authorized_keys":
        (keys.dir / "authorized_keys").write_text("# nothing\n\n")
    elif breakage == "bad authorized_keys":
        (keys.dir / "authorized_keys").write_text(authorized_line(keys.client) + "ssh-ed25519 AAAAnotakey\n")
    elif breakage == "bad listen":
        listen = "127.0.0.1"
    result = subprocess.run([str(SIDECAR), "--root", str(tmp_path / "root"), "--keys", str(keydir),
                             "--listen", listen], capture_output=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"nhdev-sidecar: {message}.*", lines[0]), lines[0]
    assert result.stdout == b""


def test_the_version_matches_the_distribution() -> None:
    assert sidecar.__version__ == importlib.metadata.version("nhdev")


def test_probe_answers_only_while_ssh_is_served(server: Sidecar) -> None:
    probe = [str(SIDECAR), "probe"]
    up = subprocess.run([*probe, f"127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=10)
    assert up.returncode == 0, up.stderr
    stop(server.process)
    down = subprocess.run([*probe, f"127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=10)
    assert down.returncode == 1 and "no SSH server answering" in down.stderr
    usage = subprocess.run([*probe], capture_output=True, text=True, timeout=10)
    assert usage.returncode == 2
