"""The key directory (a mounted Secret): the host key(s) and the client's authorized keys.

Contract, files in KEYDIR:

- ``authorized_keys``: OpenSSH format, one public key per line (``ssh-ed25519``,
  ``ecdsa-sha2-nistp256/384/521``, ``ssh-rsa``), ``#`` comments and blank lines allowed. Lines with
  options (``from=...``) are rejected rather than half-honoured: nhdev writes plain keys.
- ``ssh_host_ed25519_key``, ``ssh_host_ecdsa_key``, ``ssh_host_rsa_key``: private host keys in
  OpenSSH (or PEM) format, unencrypted; at least one must be present, all present are served.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.pkey import UnknownKeyType

AUTHORIZED_KEYS = "authorized_keys"
HOST_KEY_FILES = ("ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key")


class KeyFileError(Exception):
    """A key file is missing or unreadable; the message is one line, fit for stderr."""


def load_host_keys(keydir: Path) -> list[paramiko.PKey]:
    present = [keydir / name for name in HOST_KEY_FILES if (keydir / name).exists()]
    if not present:
        raise KeyFileError(f"no host key in {keydir} (expected one of: {', '.join(HOST_KEY_FILES)})")
    return [_load_private_key(path) for path in present]


def _load_private_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, ValueError, TypeError, paramiko.SSHException, UnknownKeyType) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KeyFileError(f"invalid host key {path}: {reason}") from exc


@dataclass(frozen=True)
class AuthorizedKeys:
    """``authorized_keys``, read again on every check so a rotated Secret takes effect at once."""

    path: Path

    def load(self) -> list[paramiko.PKey]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read {self.path}: {exc.strerror if isinstance(exc, OSError) else exc}") from exc
        keys = [_parse_line(self.path, number, line) for number, line in enumerate(text.splitlines(), 1)]
        found = [key for key in keys if key is not None]
        if not found:
            raise KeyFileError(f"no public key in {self.path}")
        return found

    def allows(self, key: paramiko.PKey) -> bool:
        """Whether ``key`` is listed; KeyFileError if the file cannot be read or parsed."""
        blob = key.asbytes()
        return any(candidate.asbytes() == blob for candidate in self.load())


def _parse_line(path: Path, number: int, line: str) -> paramiko.PKey | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    where = f"{path}:{number}"
    if len(fields) < 2:
        raise KeyFileError(f"invalid public key at {where}: expected 'TYPE BASE64 [COMMENT]'")
    key_type, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
        key = paramiko.PKey.from_type_string(key_type, blob)
    except (binascii.Error, ValueError, paramiko.SSHException, UnknownKeyType) as exc:
        raise KeyFileError(f"invalid public key at {where}: {key_type!r} ({type(exc).__name__})") from exc
    # paramiko accepts some truncated blobs; a key that does not encode back to its bytes is not it.
    if key.asbytes() != blob:
        raise KeyFileError(f"invalid public key at {where}: {key_type!r} (truncated or malformed)")
    return key
