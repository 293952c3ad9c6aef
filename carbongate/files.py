"""Files shared between processes: written atomically, re-read when they change.

The feed's snapshot, governance's budgets, the certificates and the policies'
data.json are written by one process and read by others (webhook workers,
the controller, governance) while they are replaced. Every write here goes
to a temporary file in the same directory, created with its final mode (no
moment at which a private key is readable by others), flushed to disk and
renamed over the target, which POSIX makes atomic: a reader sees the old
content or the new, never a part.

A reader notices a change by the file's (``st_mtime_ns``, size) :class:`Stamp`:
nanoseconds, because two writes within the same second of a float
``st_mtime`` on a coarse file system would otherwise look alike.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PUBLIC_MODE = 0o644
PRIVATE_MODE = 0o600


def write_atomically(path: Path, content: str | bytes, *, mode: int = PUBLIC_MODE) -> None:
    """Replace ``path`` with ``content`` (text is UTF-8): temp file with ``mode``, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if os.fstat(descriptor).st_mode & 0o777 != mode:
            os.fchmod(descriptor, mode)  # a narrow umask does not decide who may read a public file
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` as JSON (no NaN: other readers would choke), atomically."""
    write_atomically(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """The decoded document (``OSError``/``ValueError`` when missing or not JSON)."""
    return json.loads(path.read_text(encoding="utf-8"))


def load_json(path: Path) -> Mapping[str, Any]:
    """A JSON object from a file (ValueError when it is not an object)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return value


@dataclass(frozen=True)
class Stamp:
    """What tells one version of a file from the next."""

    mtime_ns: int
    size: int


def stamp(path: Path) -> Stamp | None:
    """The file's current stamp, or None when it cannot be stat'ed (missing, no permission)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return Stamp(mtime_ns=status.st_mtime_ns, size=status.st_size)


class FileWatch:
    """Whether a file changed since the version its reader last took.

    The reader decides when a version counts as taken (``take``): after a
    clean load, so a broken file is tried again, or at once, so it is not.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._taken: Stamp | None = None

    def changed(self) -> Stamp | None:
        """The file's stamp when it differs from the taken one; None when unchanged or unreadable."""
        current = stamp(self.path)
        return None if current is None or current == self._taken else current

    def take(self, version: Stamp) -> None:
        self._taken = version


Loader = Callable[[Path], Mapping[str, Any]]


class WatchedDocument:
    """A JSON document read from a file and re-read when the file changes.

    A version that fails to load never replaces the last good one: the failure
    is logged and reported to ``on_error``, and is tried again on the next
    refresh (the writer may be about to fix it).
    """

    def __init__(self, *, name: str, path: Path, loader: Loader, on_error: Callable[[str], None]) -> None:
        self.name = name
        self.path = path
        self._loader = loader
        self._on_error = on_error
        self._watch = FileWatch(path)
        self._value: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def value(self) -> Mapping[str, Any] | None:
        """The last document that loaded cleanly, or None."""
        return self._value

    def refresh(self) -> bool:
        """Reload if the file changed; True when a new version was taken."""
        with self._lock:
            version = self._watch.changed()
            if version is None:
                return False
            try:
                value = self._loader(self.path)
            except (OSError, ValueError) as error:
                self._on_error(f"{self.name}: {error}")
                log.warning("keeping the previous %s: cannot load %s: %s", self.name, self.path, error)
                return False
            self._watch.take(version)
            self._value = value
            return True
