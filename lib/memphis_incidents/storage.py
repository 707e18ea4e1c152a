"""Object storage behind one small interface: a local folder (embedded) or a GCS bucket (gcp).

Keys are '/'-separated relative paths. Every write is atomic: a reader sees the old object or the
new one, never half of one (local: temp file + rename; GCS: single-object uploads are atomic).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

TEMP_PREFIX = ".tmp-"  # a write in progress: never listed


class Storage(Protocol):
    """Atomic, key-addressed blob storage."""

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def read_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted."""

    def delete(self, key: str) -> None: ...

    def uri(self, key: str) -> str:
        """Where a user finds the object (a path or a gs:// URI)."""


class LocalStorage:
    """A folder on the local disk."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def write_bytes(self, key: str, data: bytes) -> None:
        write_atomically(self.path(key), data)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(TEMP_PREFIX))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str(self.path(key))


def write_atomically(target: Path, data: bytes) -> Path:
    """Write a file so that a reader (or a kill mid-write) sees the old file or the whole new one:
    a synced temp file beside it, then one rename."""
    with atomic_file(target) as handle:
        handle.write(data)
    return target


def process_umask() -> int:
    """The process's umask, read once at import (reading it means setting it, so not while threads write)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = process_umask()


@contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A file to write that appears at `target` only once the block ends without an error (a synced
    temp file beside it, then one rename); on an error it is removed. The one atomic write of the package."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=f".{target.name}.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)  # as open() would make it, not mkstemp's owner-only 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def object_writer(storage: Storage, key: str) -> Iterator[BinaryIO]:
    """A stream that becomes the object `key` once the block ends without an error: a local file
    written in place (atomic_file), or for other storages a buffer uploaded at the end."""
    if isinstance(storage, LocalStorage):
        with atomic_file(storage.path(key)) as handle:
            yield handle
        return
    buffer = io.BytesIO()
    yield buffer
    storage.write_bytes(key, buffer.getvalue())


def object_reader(storage: Storage, key: str) -> BinaryIO:
    """An object to read as a stream: a local file opened where it is, other storages' bytes in memory."""
    if isinstance(storage, LocalStorage):
        return open(storage.path(key), "rb")
    return io.BytesIO(storage.read_bytes(key))


def copy_atomically(source: Path, target: Path) -> Path:
    """Copy a file with `write_atomically`."""
    return write_atomically(target, source.read_bytes())


def write_json(storage: Storage, key: str, value: Any) -> None:
    """Write a JSON document atomically."""
    storage.write_bytes(key, (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(storage: Storage, key: str, default: Any = None) -> Any:
    """Read a JSON document, or `default` if it does not exist."""
    if not storage.exists(key):
        return default
    return json.loads(storage.read_bytes(key))
