"""Sync as a session service: the developer's tree kept equal to the dev container's workDir."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from nhdev.config import DevSettings, load_config
from nhdev.errors import UserError
from nhdev.session.control import Message, OpHandler
from nhdev.session.services import SessionContext, SessionService
from nhdev.session.state import SessionSpec
from nhdev.sync.engine import SyncEngine
from nhdev.sync.rules import IgnoreRules

log = logging.getLogger("nhdev.session.sync")
PUBLISH_EVERY = 0.5  # seconds between pushed sync states while busy


def project_root(spec: SessionSpec) -> Path:
    """The tree to sync: the directory holding ``.nhdev/`` (or ``.nocalhost/``), else where dev started."""
    if spec.config_path:
        config = Path(spec.config_path).resolve()
        if config.parent.name in (".nhdev", ".nocalhost"):
            return config.parent.parent
    return Path(spec.local_root or ".").resolve()


def dev_settings(spec: SessionSpec) -> DevSettings | None:
    if not spec.config_path:
        return None
    return load_config(Path(spec.config_path)).service(spec.service, None).container(spec.container).dev


class SyncService(SessionService):
    name = "sync"

    def __init__(self, spec: SessionSpec, settings: DevSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.root = project_root(spec)
        self.engine: SyncEngine | None = None
        self.thread: threading.Thread | None = None

    def start(self, context: SessionContext) -> None:
        rules = IgnoreRules.from_config(self.settings.sync, self.root)
        self.engine = SyncEngine(context.tunnel, self.root, "/", rules, direction=self.settings.sync.type,
                                 delete_protection=self.settings.sync.delete_protection,
                                 state_dir=context.state_dir / "sync")
        self.thread = threading.Thread(target=self.engine.run, args=(context.stopping,), name="sync", daemon=True)
        self.thread.start()
        threading.Thread(target=self._publish_changes, args=(context,), name="sync-status", daemon=True).start()

    def _publish_changes(self, context: SessionContext) -> None:
        last: dict[str, Any] | None = None
        while not context.stopping.wait(PUBLISH_EVERY):
            current = self.status()
            summary = {k: current.get(k) for k in ("state", "pending", "last_error")}
            if summary != last:
                context.publish({"event": "sync", **current})
                last = summary

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.engine is not None:
            self.engine.close()

    def status(self) -> dict[str, Any]:
        return self.engine.status().to_json() if self.engine is not None else {"state": "starting"}

    def ops(self) -> dict[str, OpHandler]:
        def sync_status(_request: Message) -> Message:
            return {"sync": self.status()}

        return {"sync-status": sync_status, "resync": self._resync}

    def _resync(self, _request: Message) -> Message:
        """Compare the whole tree with the pod again (the IDE's "resync"); answers at once, the work follows."""
        if self.engine is None:
            raise UserError("sync has not started yet; try again in a moment")
        self.engine.request_full_compare()
        return {"sync": self.status()}

    def on_batch(self, callback: Any) -> None:
        """Hot reload subscribes here (called on the sync thread after each batch sent to the pod)."""
        if self.engine is not None:
            self.engine.on_batch(callback)


def sync_service(spec: SessionSpec) -> SessionService | None:
    try:
        settings = dev_settings(spec)
    except Exception:  # a config that no longer loads: the session still forwards ports
        log.exception("dev config %s could not be read; sync is off", spec.config_path)
        return None
    return SyncService(spec, settings) if settings is not None else None
