"""Names nhdev writes on a cluster: label and annotation keys, object names, container names.

Everything nhdev creates carries ``MANAGED_BY`` and a session label so ``nhdev cleanup`` can find
exactly what it made, and nothing else.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "nhdev.dev/"

# Labels (selectable).
MANAGED_BY = PREFIX + "managed-by"  # value: "nhdev"
SESSION = PREFIX + "session"
WORKLOAD_KIND = PREFIX + "workload-kind"
WORKLOAD_NAME = PREFIX + "workload-name"
DIR_HASH = PREFIX + "dir-hash"
DUPLICATE_OF = PREFIX + "duplicate-of"
ROLE = PREFIX + "role"  # backup | keys | cache | generated | duplicate

# Annotations.
OWNER = PREFIX + "owner"  # JSON: who holds dev mode on the workload
BACKUP = PREFIX + "backup"  # name of the backup Secret
MODE = PREFIX + "mode"
DEV_CONTAINER = PREFIX + "dev-container"
DIR = PREFIX + "dir"
EXPIRES = PREFIX + "expires"  # duplicate ttl, RFC 3339

SIDECAR_CONTAINER = "nhdev-sidecar"
WORKDIR_VOLUME = "nhdev-workdir"
KEYS_VOLUME = "nhdev-keys"
KEYS_MOUNT = "/var/run/nhdev/keys"
SIDECAR_PORT = 2222
CACHE_VOLUME_PREFIX = "nhdev-cache-"

_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


def short_hash(text: str, length: int = 10) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def dns_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label built from ``parts``; long names keep a hash so they stay unique."""
    raw = "-".join(p for p in parts if p)
    name = _DNS_UNSAFE.sub("-", raw.lower()).strip("-")
    if len(name) <= limit:
        return name
    digest = short_hash(raw, 8)
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def backup_secret_name(kind: str, name: str) -> str:
    return dns_name("nhdev-backup", kind.lower(), name, limit=253)


def keys_secret_name(workload: str, session: str) -> str:
    return dns_name("nhdev-keys", workload, session[:8], limit=253)


def cache_claim_name(kind: str, workload: str, path: str) -> str:
    return dns_name("nhdev-cache", kind.lower(), workload, short_hash(path, 8), limit=253)


def duplicate_name(workload: str, session: str) -> str:
    return dns_name(workload, "nhdev", session[:6])


def generated_name(workload: str) -> str:
    return dns_name(workload, "nhdev-dev")
