"""Immutable table versions in a folder: `vNNNNNN/` directories and a `current` symlink swapped
atomically, so a crash at any instant leaves the previous version whole and a reader is never moved
mid-read."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..layout import CURRENT

KEEP_VERSIONS = 3
VERSION = re.compile(r"^v(\d{6})$")


class VersionedDir:
    """A directory of immutable versions `vNNNNNN/` and a `current` symlink swapped atomically."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def current(self) -> Path | None:
        link = self.root / CURRENT
        return link.resolve() if link.is_symlink() and link.resolve().exists() else None

    def versions(self) -> list[Path]:
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.iterdir() if VERSION.match(p.name) and p.is_dir())

    def staging(self) -> Path:
        """A fresh, empty directory for the next version (leftovers of a crash are cleared)."""
        numbers = [int(p.name[1:]) for p in self.versions()]
        target = self.root / f".v{max(numbers, default=0) + 1:06d}.staging"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        return target

    def publish(self, staged: Path) -> Path:
        """Rename a staged version into place, point `current` at it, then prune old versions."""
        final = self.root / staged.name.removeprefix(".").removesuffix(".staging")
        _fsync_tree(staged)
        os.rename(staged, final)
        link = self.root / f".current.{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(final.name)
        os.replace(link, self.root / CURRENT)
        _fsync_dir(self.root)
        for old in self.versions()[:-KEEP_VERSIONS]:
            shutil.rmtree(old, ignore_errors=True)
        return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
