"""Atomic file writes: a reader sees the old file, the whole new one, or none; never half.

The one way blindgate writes a file that something else reads as complete (PSI results,
trained models, key-store versions, settlement files): the bytes go to a temporary file
beside the destination, are flushed and fsynced, and the file is renamed into place (or,
``exclusive``, linked, which fails if the destination exists: no writer overwrites
another's file); the directory is fsynced so the rename survives a crash. On any error
the temporary file is removed and the destination is untouched. Imports nothing of
blindgate's: every package may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_writer(
    path: Path,
    binary: bool = False,
    *,
    exclusive: bool = False,
    permissions: int | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a file that appears at ``path`` whole, when the ``with`` block ends without error.

    ``exclusive``: raise `FileExistsError` (and write nothing) if ``path`` exists by then.
    ``permissions``: the file's mode bits (default: the temporary file's 0o600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(descriptor, mode, encoding=encoding, newline=None if binary else newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if permissions is not None:
            os.chmod(temporary, permissions)
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
        _sync_directory(path.parent)
    finally:
        Path(temporary).unlink(missing_ok=True)  # after a link or an error; gone after a replace


def write_atomically(path: Path, data: bytes | str, **options: Any) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` at once (see :func:`atomic_writer`)."""
    with atomic_writer(path, binary=isinstance(data, bytes), **options) as handle:
        handle.write(data)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["atomic_writer", "write_atomically"]
