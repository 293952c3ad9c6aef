"""Atomic JSON files: a reader sees the old document or the new one, never half of either.

The snapshot and the last-known-good cache are read by other processes (the
webhook workers, the feed after a restart) while the feed writes them. Each
write goes to a temporary file in the same directory, is flushed to disk and
then renamed over the target, which POSIX makes atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` as JSON, atomically (temp file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=1, sort_keys=False, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The decoded document (``OSError``/``ValueError`` when missing or not JSON)."""
    return json.loads(path.read_text(encoding="utf-8"))
