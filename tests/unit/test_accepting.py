"""start_accepting: connections served on threads; a full descriptor table pauses, not spins."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from nhdev.accepting import start_accepting

# Run in a child: it lowers its own descriptor limit until accept() fails with EMFILE, counts the
# failures over half a second, then frees descriptors and checks the waiting client is served.
EMFILE_SCRIPT = r"""
import logging, resource, socket, threading, time
from nhdev.accepting import start_accepting

failures = []
class Count(logging.Handler):
    def emit(self, record): failures.append(record.getMessage())
logging.getLogger("nhdev.accepting").addHandler(Count())
logging.getLogger("nhdev.accepting").setLevel(logging.WARNING)

listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
served = threading.Event()
spare = []
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
try:
    while True:
        spare.append(socket.socket())
except OSError:
    pass
start_accepting(listener, lambda conn, peer: (served.set(), conn.close()), threading.Event(), name="t")
time.sleep(0.5)
count = len(failures)
for s in spare:
    s.close()
assert served.wait(5), "the waiting client was not served once descriptors were free"
assert "Too many open files" in failures[0], failures[:1]
print(count)
"""


def test_each_connection_is_served_on_its_own_thread() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()
    started = threading.Barrier(3, timeout=5)  # two connections in service at once, and this test

    def serve(conn: socket.socket, peer: object) -> None:
        with conn:
            started.wait()
            conn.sendall(f"{peer[0]}".encode())  # type: ignore[index]

    start_accepting(listener, serve, stopping, name="test")
    clients = [socket.create_connection(listener.getsockname(), timeout=5) for _ in range(2)]
    started.wait()
    assert [c.recv(100) for c in clients] == [b"127.0.0.1", b"127.0.0.1"]
    stopping.set()
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    for c in clients:
        c.close()


def test_a_full_descriptor_table_pauses_instead_of_spinning() -> None:
    done = subprocess.run([sys.executable, "-c", EMFILE_SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    failures = int(done.stdout)
    assert 1 <= failures <= 10, f"{failures} accept failures in 0.5 s: the loop spins"
