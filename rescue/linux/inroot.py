"""Paths inside a volume's tree, resolved as if the tree were the root of the machine.

The volume is untrusted: its symlinks (`/home -> var/home`, `authorized_keys ->
/etc/shadow`) are resolved against the volume's root, never the helper's, like
openat2(RESOLVE_IN_ROOT). Resolution gives a list of plain components; opening then walks
them with directory fds and O_NOFOLLOW, so a component swapped for a symlink in between
makes the open fail instead of escaping.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from .. import RescueError

MAX_SYMLINKS = 40  # as the kernel's own limit for one path lookup
MAX_READ = 4 * 1024 * 1024  # config files larger than this are not configuration
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split(path: str) -> List[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def as_path(components: List[str]) -> str:
    return "/" + "/".join(components)


def resolve_dots(parts: List[str]) -> List[str]:
    """Apply `..` without the filesystem, for the part of a path that does not exist yet."""
    out: List[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


def replace_fd(old_fd: int, new_fd: int) -> int:
    """Close old_fd once new_fd is open; the caller's finally then owns only new_fd."""
    os.close(old_fd)
    return new_fd


@contextmanager
def held_fd(fd: int) -> Iterator[List[int]]:
    """Hold a (replaceable) fd in a box and close whichever fd it holds at the end."""
    box = [fd]
    try:
        yield box
    finally:
        os.close(box[0])


def write_all(fd: int, data: bytes, offset: int) -> None:
    """Write data at offset and make it durable, or raise: never a silent short write.

    os.write returns how many bytes it wrote: on a full disk that is part of the data, and
    only the next call fails with ENOSPC. What is read back after fsync must be the data.
    """
    written = 0
    while written < len(data):
        count = os.pwrite(fd, data[written:], offset + written)
        if count <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        written += count
    os.fsync(fd)
    if os.pread(fd, len(data), offset) != data:
        raise OSError(errno.EIO, "what was written did not read back the same")


class VolumeRoot:
    """A directory tree treated as `/`; every lookup stays inside it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(os.path.realpath(path))
        if not self.path.is_dir():
            raise RescueError(f"--root {path} is not a directory")
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> VolumeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, path: str, follow_last: bool = True) -> Tuple[List[str], bool]:
        """Components of `path` with every symlink resolved in-root, and whether it exists.

        A missing component ends the lookup: the rest is appended as written, so callers
        can create it. With follow_last False a final symlink is kept as is.
        """
        pending = list(reversed(split(path)))
        done: List[str] = []
        links = 0
        fd = os.dup(self.fd)
        try:
            while pending:
                name = pending.pop()
                if name == "..":
                    if done:
                        done.pop()
                        fd = replace_fd(fd, self.open_dir(done))
                    continue
                try:
                    info = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    return resolve_dots([*done, name, *list(reversed(pending))]), False
                if stat.S_ISLNK(info.st_mode) and (pending or follow_last):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise RescueError(f"too many symlinks resolving {path} in the volume")
                    target = os.readlink(name, dir_fd=fd)
                    if target.startswith("/"):
                        done = []
                        fd = replace_fd(fd, os.dup(self.fd))
                    pending.extend(reversed(split(target)))
                    continue
                if pending:
                    if not stat.S_ISDIR(info.st_mode):
                        return resolve_dots([*done, name, *list(reversed(pending))]), False
                    fd = replace_fd(fd, os.open(name, DIR_FLAGS, dir_fd=fd))
                done.append(name)
            return done, True
        finally:
            os.close(fd)

    def open_dir(self, components: List[str]) -> int:
        """An fd of the directory at these symlink-free components (O_NOFOLLOW each)."""
        fd = os.dup(self.fd)
        try:
            for name in components:
                fd = replace_fd(fd, os.open(name, DIR_FLAGS, dir_fd=fd))
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError) and exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise RescueError(
                    f"{as_path(components)} in the volume changed while being opened"
                ) from exc
            raise
        return fd

    def read_text(self, path: str) -> Optional[str]:
        """The content of a regular file in the volume; None if missing or not a regular file."""
        components, exists = self.resolve(path)
        if not exists or not components:
            return None
        dir_fd = self.open_dir(components[:-1])
        try:
            # lstat first: opening a device node or FIFO of an untrusted volume has effects.
            if not stat.S_ISREG(os.lstat(components[-1], dir_fd=dir_fd).st_mode):
                return None
            fd = os.open(
                components[-1],
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                dir_fd=dir_fd,
            )
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            return handle.read(MAX_READ).decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        return self.resolve(path)[1]

    def _names(self, components: List[str]) -> List[str]:
        """Sorted entries of a directory, or none when it is not one."""
        try:
            fd = self.open_dir(components)
        except (OSError, RescueError):
            return []
        try:
            return sorted(os.listdir(fd))  # noqa: PTH208 - listing by fd, no path
        finally:
            os.close(fd)

    def glob(self, pattern: str) -> List[str]:
        """In-root glob(3): matches in sorted order, as sshd's Include expands them."""
        found: List[List[str]] = [[]]
        for part in split(pattern):
            expanded: List[List[str]] = []
            for prefix in found:
                if not any(ch in part for ch in "*?["):
                    components, exists = self.resolve(as_path([*prefix, part]))
                    if exists:
                        expanded.append(components)
                    continue
                expanded.extend(
                    self.resolve(as_path([*prefix, name]))[0]
                    for name in self._names(prefix)
                    if fnmatch.fnmatchcase(name, part)
                    and (part.startswith(".") or not name.startswith("."))
                )
            found = expanded
        return sorted(as_path(components) for components in found)
