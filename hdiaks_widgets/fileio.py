"""Writing a file so that a reader sees the old text or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text"]

_NEW_FILE_MODE = 0o644


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Replace the file at ``path`` with ``text`` (UTF-8, ``\\n`` line ends) in one step.

    The text goes to a unique temporary file in the same directory, is flushed to disk, gets
    ``mode`` (default: the target's current mode, or 0o644 for a new file; ``mkstemp`` itself
    creates 0600), then is renamed over the target: ``os.replace`` is atomic on POSIX and
    Windows, so a crash or a full disk never leaves half a file. On failure the temporary file
    is removed, the target is untouched and the error (usually ``OSError``) propagates.
    """
    target = Path(path)
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            mode = target.stat().st_mode & 0o777 if target.exists() else _NEW_FILE_MODE
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
        tmp_name = None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target
