"""Per-session SSH keys for the sidecar: a client key pair and a host key, fresh each session.

The Secret holds what the sidecar needs (the client's public key as ``authorized_keys`` and its
own host key); the client keeps its private key and pins the host's public key.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nhdev.devmode import names

Obj = dict[str, object]


@dataclass(frozen=True)
class SessionKeys:
    client_private: str  # OpenSSH private key, stays on the developer's machine
    client_public: str  # "ssh-ed25519 AAAA... nhdev-session"
    host_private: str  # goes to the sidecar through the Secret
    host_public: str  # pinned by the client

    def secret(self, name: str, namespace: str, session: str, workload: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {names.MANAGED_BY: "nhdev", names.ROLE: "keys", names.SESSION: session,
                                    names.WORKLOAD_NAME: workload}},
            "stringData": {"authorized_keys": self.client_public + "\n",
                           "ssh_host_ed25519_key": self.host_private,
                           "ssh_host_ed25519_key.pub": self.host_public + "\n"},
        }


def _pair(comment: str) -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


def generate_session_keys() -> SessionKeys:
    client_private, client_public = _pair("nhdev-client")
    host_private, host_public = _pair("nhdev-sidecar")
    return SessionKeys(client_private, client_public, host_private, host_public)
