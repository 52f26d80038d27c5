"""The images the sandbox "has": every known image runs on the host's root file system.

There is no registry and no image store: the list says which image references a pod may use.
A pod naming an image outside the list fails the way a real node fails to pull it
(``ErrImagePull``, then ``ImagePullBackOff``), so manifests behave like on a cluster.

An entry is a repository pattern, optionally with a tag:

- ``python`` matches ``python``, ``python:3.12``, ``docker.io/library/python:3.12-slim``,
  ``mirror.gcr.io/library/python`` (any registry, any tag);
- ``ghcr.io/nhdev/*`` matches every repository below ``ghcr.io/nhdev/`` with any tag; an entry
  naming a registry only matches images from that registry;
- ``myorg/app:1.0`` matches only that tag.

The list lives in ``STATE/images.json`` and is re-read when the file changes, so the CLI can edit
it while the server runs.

With a runtime that runs real images (``podman``), the list is that runtime's local store
instead (a :class:`LocalImageStore`): an image is known when the store has it, and nhdev's images
are real images, given no host directories and no PATH of the host.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_IMAGES = (
    "ghcr.io/nhdev/*",
    "nhdev/*",
    "python",
    "golang",
    "node",
    "openjdk",
    "eclipse-temurin",
    "busybox",
    "ubuntu",
    "debian",
    "nginx",
    "alpine",
)
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")  # one registry, three names
# nhdev's own images have nhdev's programs (nhdev-sidecar, debugpy) on PATH; here those are the
# scripts installed beside the sandbox's own Python.
NHDEV_IMAGES = ("ghcr.io/nhdev/*", "nhdev/*")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LocalImageStore(Protocol):
    """A container runtime's own image store (e.g. podman's local images)."""

    def exists(self, image: str) -> bool: ...

    def user(self, image: str) -> str | None:
        """The image's ``USER`` ("" when it names none), None when the image is not there."""
        ...


@dataclass(frozen=True)
class ImageReference:
    """An image reference split the way the container runtimes split it."""

    registry: str | None  # None: none written
    repository: str  # without the registry and without Docker Hub's "library/"
    tag: str | None  # None: none written (digest-only or bare)

    @classmethod
    def parse(cls, reference: str) -> ImageReference:
        name = reference.strip().split("@", 1)[0]
        tag = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], name[colon + 1:]
        registry = None
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, name = first, rest
        # Docker Hub's official images live under library/; mirrors keep that path.
        return cls(registry, name.removeprefix("library/"), tag)


def _registry(name: str) -> str:
    return "docker.io" if name in _DOCKER_HUB else name


def _matches(entry: str, image: str) -> bool:
    pattern, ref = ImageReference.parse(entry), ImageReference.parse(image)
    if pattern.registry is not None and _registry(pattern.registry) != _registry(ref.registry or "docker.io"):
        return False
    if pattern.tag is not None and pattern.tag != (ref.tag or "latest"):
        return False
    return fnmatch.fnmatchcase(ref.repository, pattern.repository)


class ImageList:
    """The persisted list of image patterns the sandbox runs (see the module docstring)."""

    def __init__(self, state_dir: Path, *, local_store: LocalImageStore | None = None) -> None:
        self.path = Path(state_dir) / "images.json"
        self.local_store = local_store
        self._entries: list[str] = list(DEFAULT_IMAGES)
        self._loaded_mtime: int | None = None

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._entries, self._loaded_mtime = list(DEFAULT_IMAGES), None
            return
        if mtime != self._loaded_mtime:
            data = json.loads(self.path.read_text())
            self._entries = [str(entry) for entry in data.get("images", [])]
            self._loaded_mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"images": self._entries}, indent=2) + "\n")
        os.replace(temporary, self.path)
        self._loaded_mtime = self.path.stat().st_mtime_ns

    def list(self) -> list[str]:
        self._refresh()
        return list(self._entries)

    def environment(self, image: str) -> dict[str, str]:
        """The image's own environment (its ``ENV``), under the container's; empty for stand-ins
        and for real images (their runtime applies their ENV)."""
        if self.local_store is None and any(_matches(entry, image) for entry in NHDEV_IMAGES):
            return {"PATH": f"{Path(sys.executable).parent}:{HOST_PATH}"}
        return {}

    def mounts(self, image: str) -> tuple[tuple[Path, str], ...]:
        """Host directories the image "contains": for nhdev's images, the Python environment and
        the nhdev sources, bound read-only at their own paths (they may sit under /tmp, which every
        container gets fresh)."""
        if self.local_store is not None or not any(_matches(entry, image) for entry in NHDEV_IMAGES):
            return ()
        import nhdev
        import sidecar

        roots = {Path(sys.prefix), Path(sys.base_prefix), Path(nhdev.__file__).resolve().parent.parent,
                 Path(sidecar.__file__).resolve().parent.parent}
        return tuple((root, str(root)) for root in sorted(roots) if root.is_dir())

    def user(self, image: str) -> str | None:
        """The user ``image`` runs as when the pod names none (its ``USER``, "" for root), for the
        kubelet's runAsNonRoot check; None when unknown: the stand-in images run as whoever runs
        the sandbox, which says nothing about the real image's user."""
        if self.local_store is None:
            return None
        return self.local_store.user(image)

    def known(self, image: str) -> bool:
        if self.local_store is not None:
            return bool(image) and self.local_store.exists(image)
        self._refresh()
        return bool(image) and any(_matches(entry, image) for entry in self._entries)

    def add(self, entry: str) -> bool:
        """Adds a pattern; False if it was already listed."""
        self._refresh()
        entry = entry.strip()
        if not entry:
            raise ValueError("an image pattern cannot be empty")
        if entry in self._entries:
            return False
        self._entries.append(entry)
        self._save()
        return True

    def remove(self, entry: str) -> bool:
        """Removes a pattern exactly as listed; False if it was not listed."""
        self._refresh()
        if entry.strip() not in self._entries:
            return False
        self._entries.remove(entry.strip())
        self._save()
        return True
