"""What ``nhdev dev sync --status`` shows: state, counts, counters, the last error and warnings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

State = Literal["starting", "scanning", "syncing", "idle", "paused", "error", "stopped"]
MAX_WARNINGS = 50


@dataclass
class SyncCounters:
    """Cumulative since the engine started; tests assert on these rather than on time."""

    batches: int = 0
    files_sent: int = 0  # with their content
    attributes_sent: int = 0  # files of which only mode and mtime were sent (the pod had the content)
    files_patched: int = 0  # of files_sent: sent as block deltas against the pod's version
    bytes_sent: int = 0
    files_fetched: int = 0
    attributes_fetched: int = 0  # mode changes made in the pod, applied here without fetching content
    bytes_fetched: int = 0
    deleted_remote: int = 0
    deleted_local: int = 0
    conflicts: int = 0
    hashed_files: int = 0  # local files read to hash them
    hashed_bytes: int = 0
    reused_hashes: int = 0  # local files the index vouched for
    remote_hashed_files: int = 0  # files the sidecar read to hash them (from its manifests)
    full_compares: int = 0
    resumes: int = 0


@dataclass
class SyncProgress:
    phase: str  # "scanning", "comparing", "sending", "fetching"
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


@dataclass
class SyncStatus:
    state: State = "starting"
    direction: str = "send"
    local_root: str = ""
    remote_root: str = ""
    watcher: str = ""  # inotify / polling
    remote_watcher: str = ""
    pending: int = 0  # paths waiting for the next batch
    files_in_sync: int = 0
    last_batch_ms: float = 0.0
    last_synced_at: float = 0.0  # time.time()
    last_error: str = ""
    warnings: list[str] = field(default_factory=list)
    progress: SyncProgress | None = None
    counters: SyncCounters = field(default_factory=SyncCounters)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            del self.warnings[:-MAX_WARNINGS]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
