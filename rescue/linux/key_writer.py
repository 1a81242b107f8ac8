"""Write one key into one authorized_keys file of the volume, safely, or change nothing.

Missing directories are created owned as sshd wants, a new file is 600 and the user's (or
root's 644 when other accounts read it too), an existing file only grows in place (inode,
owner and label kept) and is put back byte for byte on any failure. Symlinks, hard links
and anything but a regular file are refused. Which file, and whether sshd would read it,
is decided before: key_paths.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from typing import List, Optional

from .. import RescueError
from .inroot import DIR_FLAGS, VolumeRoot, as_path, held_fd, replace_fd, write_all
from .key_lines import parse_key_line
from .keys import PublicKey
from .selinux import SELinuxLabels
from .users import Account

FULL_VOLUME = (
    "the volume is full: no room for the key in {path}, which is left as it was; free space "
    "on the volume from a helper (old logs under /var/log, caches under /var/cache, core "
    "dumps) or grow it (EC2 ModifyVolume, then growpart and resize2fs or xfs_growfs), and "
    "run again"
)


class KeyWriter:
    """Writes the key into files of one volume and counts the files it changed."""

    def __init__(self, root: VolumeRoot, key: PublicKey, as_root: bool) -> None:
        self.root = root
        self.key = key
        self.as_root = as_root
        self.changed_files = 0
        self.selinux = SELinuxLabels(root, can_set=as_root)

    def write(
        self,
        real: List[str],
        account: Account,
        home: List[str],
        before: Optional[int] = None,
        shared: bool = False,
    ) -> None:
        """Create the key file or add the key to it (appended, or inserted before line
        `before`); on any failure undo what this attempt created. A new file outside the
        home that other accounts read too (`shared`) is root's, 644."""
        parent, name = real[:-1], real[-1]
        in_home = len(parent) > len(home) and parent[: len(home)] == home
        created: List[List[str]] = []
        try:
            with held_fd(self._ensure_dirs(parent, account, home, created)) as dir_box:
                dir_fd = dir_box[0]
                try:
                    info: Optional[os.stat_result] = os.lstat(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    info = None
                if info is not None:
                    self._refuse_odd_file(dir_fd, name, as_path(real), info)
                tightened = in_home and self._tighten(dir_fd)
                if info is None:
                    owner = None if shared and not in_home else account
                    self._create_file(dir_fd, name, owner, ssh_object=in_home)
                else:
                    self._append_existing(dir_fd, name, as_path(real), info, before)
        except BaseException:
            self._remove_dirs(created)
            raise
        self.changed_files += len(created) + 1 + int(tightened)

    @staticmethod
    def _refuse_odd_file(dir_fd: int, name: str, path: str, info: os.stat_result) -> None:
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=dir_fd)
            raise RescueError(
                f"{path} is a symlink to {target}: not following it; make it a regular file"
            )
        if not stat.S_ISREG(info.st_mode):
            raise RescueError(f"{path} is not a regular file")
        if info.st_nlink > 1:
            raise RescueError(
                f"{path} has {info.st_nlink} hard links: refusing to write through them"
            )

    def _ensure_dirs(
        self, components: List[str], account: Account, home: List[str], created: List[List[str]]
    ) -> int:
        """Open the directory, creating missing components (owned as the module says)."""
        fd = os.dup(self.root.fd)
        try:
            for depth, name in enumerate(components, start=1):
                try:
                    next_fd = os.open(name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    next_fd = self._make_dir(fd, name, components[:depth], account, home, created)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise RescueError(
                            f"{as_path(components[:depth])} is not a directory"
                        ) from exc
                    raise
                fd = replace_fd(fd, next_fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_dir(
        self,
        parent_fd: int,
        name: str,
        components: List[str],
        account: Account,
        home: List[str],
        created: List[List[str]],
    ) -> int:
        in_home = components[: len(home)] == home and len(components) > len(home)
        os.mkdir(name, 0o700 if in_home else 0o755, dir_fd=parent_fd)
        created.append(components)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        try:
            os.fchmod(fd, 0o700 if in_home else 0o755)  # mkdir's mode passes through the umask
            if in_home and self.as_root:
                os.fchown(fd, account.uid, account.gid)
            self.selinux.label(parent_fd, fd, ssh_object=in_home)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _remove_dirs(self, created: List[List[str]]) -> None:
        """Remove directories this attempt made (empty ones only: rmdir never deletes data)."""
        for components in reversed(created):
            parent = components[:-1]  # one line, not parenthesised: Python 3.7 has no such with
            with suppress(OSError, RescueError), held_fd(self.root.open_dir(parent)) as box:
                os.rmdir(components[-1], dir_fd=box[0])

    def _create_file(
        self, dir_fd: int, name: str, owner: Optional[Account], ssh_object: bool
    ) -> None:
        """A new key file: 600 and the owner's, or with no owner root's 644 (sshd reads it
        with the user's rights)."""
        mode = 0o600 if owner else 0o644
        fd = os.open(
            name,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                os.fchmod(fd, mode)
                if self.as_root:
                    os.fchown(fd, *((owner.uid, owner.gid) if owner else (0, 0)))
                self.selinux.label(dir_fd, fd, ssh_object=ssh_object)
                write_all(fd, (self.key.line + "\n").encode(), 0)
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):  # an empty key file must not stay behind
                os.unlink(name, dir_fd=dir_fd)
            raise

    def _append_existing(
        self,
        dir_fd: int,
        name: str,
        path: str,
        before: os.stat_result,
        line_index: Optional[int] = None,
    ) -> None:
        """Append the key line in place, or insert it before line `line_index` (inode, owner,
        label kept). The file only grows: the bytes past its old end are written first (only
        they need free blocks), then an insert shifts the lines after it in place. On any
        failure the file is put back byte for byte: truncated to its old length and, after
        an insert, its old bytes from the insertion point written back."""
        # pwrite ignores its offset under O_APPEND (pwrite(2), BUGS): appends only.
        append = os.O_APPEND if line_index is None else 0
        flags = os.O_RDWR | append | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with held_fd(os.open(name, flags, dir_fd=dir_fd)) as box:
            fd = box[0]
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
                raise RescueError(f"{path} changed while being opened")
            content = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                content += chunk
            separator = b"\n" if content and not content.endswith(b"\n") else b""
            line = (self.key.line + "\n").encode()
            if line_index is None:
                at, new = len(content), content + separator + line
            else:
                at = self._line_offset(content, line_index, path)
                new = content[:at] + line + content[at:] + separator
            try:
                write_all(fd, new[len(content) :], len(content))
                if at < len(content):
                    write_all(fd, new[at : len(content)], at)
                # sshd's StrictModes ignores a key file others can write: that alone locks
                # users out. The owner is never changed (KeyFileChecks refused others').
                if info.st_mode & 0o022:
                    os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~0o022)
            except BaseException as exc:
                _restore(fd, content, at, path, exc)
                raise

    def _line_offset(self, content: bytes, line_index: int, path: str) -> int:
        """Where line `line_index` starts (lines end at a newline); it must still hold the key."""
        lines = content.split(b"\n")
        if line_index < len(lines):
            parsed = parse_key_line(lines[line_index].decode("utf-8", errors="replace"))
            if parsed and parsed[1] == self.key.blob:
                return sum(len(line) + 1 for line in lines[:line_index])
        raise RescueError(f"{path} changed while being read; run again")

    def _tighten(self, dir_fd: int) -> bool:
        info = os.fstat(dir_fd)
        if info.st_mode & 0o022:
            os.fchmod(dir_fd, stat.S_IMODE(info.st_mode) & ~0o022)
            return True
        return False

    def finish(self) -> str:
        """Write /.autorelabel when a label could not be set; return the SELinux action."""
        if self.selinux.relabel_needed:
            fd = os.open(
                ".autorelabel",
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=self.root.fd,
            )
            os.close(fd)
            self.changed_files += 1
        return self.selinux.action()


def _restore(fd: int, content: bytes, at: int, path: str, exc: BaseException) -> None:
    """Put back a key file whose bytes from `at` on were `content[at:]`, or say it is not."""
    try:
        os.ftruncate(fd, len(content))  # first: frees the blocks the new bytes took
        if at < len(content):
            write_all(fd, content[at:], at)
        else:
            os.fsync(fd)
    except (OSError, OverflowError) as failed:  # what os calls raise
        raise RescueError(
            f"writing {path} failed ({exc}) and putting its old content back failed too "
            f"({failed}): check the file before the instance boots"
        ) from exc


def write_failure(path: str, real: List[str], exc: Exception) -> str:
    if isinstance(exc, RescueError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return FULL_VOLUME.format(path=as_path(real))
    # e.g. a read-only volume: say which file, go on with the other users
    strerror = exc.strerror if isinstance(exc, OSError) else None
    return f"writing {path} failed: {strerror or exc}; it is left as it was"
