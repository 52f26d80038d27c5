"""Errors meant for users.

Every failure a user can cause or fix is a :class:`UserError`: the CLI renders it as one line
(plus an optional hint) and exits with its ``exit_code``, without a traceback unless ``--debug``.
Usage and configuration problems exit 2; failures at run time (cluster, network) exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """A problem the user can understand and fix. Rendered without traceback."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(UserError):
    """Bad command-line usage: wrong arguments, conflicting flags, missing files."""

    exit_code = 2


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, located at the offending YAML node."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # dotted field path, e.g. "containers[0].dev.portForward[1]"; "" for the document
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(UserError):
    """A dev config that cannot be used; carries every issue found, not only the first."""

    exit_code = 2

    def __init__(self, issues: list[ConfigIssue], *, hint: str | None = None) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(i.render() for i in self.issues), hint=hint)


class ConfigNotFound(UserError):
    """No dev config where one was looked for."""

    exit_code = 2


class ClusterError(UserError):
    """The cluster refused or failed an operation; names the object concerned."""

    exit_code = 1


class NotFound(ClusterError):
    """A named object does not exist on the cluster."""


class Conflict(ClusterError):
    """Someone else holds or changed the object (dev-mode lock, stale resourceVersion)."""


class Timeout(ClusterError):
    """Waiting for the cluster took longer than allowed."""


class SandboxError(UserError):
    """The embedded sandbox cluster could not be started, reached or stopped."""

    exit_code = 1
