"""The mounted Windows volume: case-insensitive lookups that never follow a link, and the
few ways a file on it is read, created or rewritten in place.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import ConfigParseError, WindowsRescueError

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # launch agent configs are a few KiB


class Volume:
    """The mounted volume, looked up as Windows would: letter case ignored, links refused."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise WindowsRescueError(f"{root} is not a directory: pass the mounted Windows volume")
        self.root = root.resolve()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def child(self, directory: Path, name: str) -> Optional[Path]:
        """The entry of `directory` named `name` in any letter case, None if there is none."""
        try:
            names = [entry.name for entry in directory.iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return None
        if name in names:
            chosen = name
        else:
            matches = sorted(n for n in names if n.casefold() == name.casefold())
            if not matches:
                return None
            if len(matches) > 1:
                raise WindowsRescueError(
                    f"{self.rel(directory / name)} exists in several letter cases "
                    f"({', '.join(matches)}): keep one of them and retry"
                )
            chosen = matches[0]
        path = directory / chosen
        if path.is_symlink():
            raise WindowsRescueError(
                f"{self.rel(path)} is a symbolic link or junction: refusing to follow it, as it "
                "may lead out of the volume; make it a real directory or file, or reset the "
                "password with EC2Rescue for Windows on a Windows helper"
            )
        return path

    def find(self, rel: str) -> Optional[Path]:
        current = self.root
        for name in rel.split("/"):
            found = self.child(current, name)
            if found is None:
                return None
            current = found
        return current

    def find_file(self, rel: str) -> Optional[Path]:
        path = self.find(rel)
        if path is not None and not stat.S_ISREG(path.lstat().st_mode):
            raise WindowsRescueError(f"{self.rel(path)} is not a regular file: remove or fix it")
        return path

    def plan_dir(self, rel: str) -> Tuple[Path, List[Path]]:
        """The directory for `rel`, existing parts in their own case; the ones to create."""
        current = self.root
        missing: List[Path] = []
        for name in rel.split("/"):
            found = None if missing else self.child(current, name)
            if found is None:
                found = current / name
                missing.append(found)
            elif not found.is_dir():
                raise WindowsRescueError(f"{self.rel(found)} is not a directory: remove or fix it")
            current = found
        return current, missing


def read_config(path: Path, rel: str) -> bytes:
    """A regular file's bytes, never through a link; refused over MAX_CONFIG_BYTES."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise WindowsRescueError(f"{rel} is not a regular file: remove or fix it")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigParseError(f"{rel} is over {MAX_CONFIG_BYTES} bytes: not a configuration file")
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def rewrite(path: Path, data: bytes) -> None:
    """Replace the content in place: the file keeps its security descriptor and attributes."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _write_all(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def create_file(path: Path, data: bytes) -> None:
    """A new file (never an existing one, never through a link), flushed to the disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
