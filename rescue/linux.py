"""Linux repair: put one public key into the right authorized_keys files of a volume.

Who gets the key (decided from the volume's own files, never the helper's):
- every account of the volume's /etc/passwd with a login shell that already has one of
  the authorized_keys files sshd would read for it: someone logged in with keys there;
- the distro's default cloud user (ec2-user, ubuntu, ...), when passwd has it, even with
  no file yet: it is the account the image was built to be reached through;
- root only when its own file already holds a key without a forced command and the
  volume's sshd permits root key logins. Cloud images put `command="echo Please login as
  ec2-user;exit 142"` keys in /root: that is no invitation to log in as root, and giving a
  key root access where the owner never used it would widen access, not restore it.
Accounts with nologin, false, git-shell and similar shells are never touched.

Each chosen user gets the key in the FIRST file of its AuthorizedKeysFile list unless one
of the listed files already has it (so a second run changes nothing). The file is appended
to in place: its other lines, their order, its inode, owner and SELinux label stay; a last
line without newline gets one first. New directories inside the home are created 700 and
new files 600, owned by the uid/gid the volume's passwd gives; directories outside the
home (an absolute AuthorizedKeysFile such as /etc/ssh/keys/%u) are created root-owned 755.
A key file that is a symlink, a hard link or not a regular file is refused, not followed.
"""

from __future__ import annotations

import errno
import os
import posixpath  # paths inside the volume are POSIX strings, not local Paths
import stat
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from . import RescueError
from .inroot import VolumeRoot, as_path
from .keys import PublicKey
from .sshd_config import (
    Directive,
    UserIdentity,
    authorized_keys_files,
    permit_root_login,
    read_directives,
)

CLOUD_USERS = (
    "ec2-user",
    "ubuntu",
    "admin",
    "debian",
    "centos",
    "rocky",
    "almalinux",
    "alma",
    "fedora",
    "core",
    "cloud-user",
    "bitnami",
    "opc",
    "arch",
    "alpine",
    "kali",
)
NO_LOGIN_SHELLS = ("nologin", "false", "git-shell", "sync", "shutdown", "halt")
ROOT_KEY_LOGINS = ("yes", "prohibit-password", "without-password")
SELINUX_XATTR = "security.selinux"
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


class Account(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def can_log_in(self) -> bool:
        return bool(self.shell) and posixpath.basename(self.shell) not in NO_LOGIN_SHELLS


def read_accounts(root: VolumeRoot) -> List[Account]:
    text = root.read_text("/etc/passwd")
    if text is None:
        raise RescueError("the volume has no /etc/passwd: it is not a Linux root filesystem")
    accounts = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        accounts.append(
            Account(fields[0], int(fields[2]), int(fields[3]), fields[5] or "/", fields[6])
        )
    return accounts


def read_group_names(root: VolumeRoot, account: Account) -> List[str]:
    """The account's groups (primary and supplementary) from the volume's /etc/group."""
    names = []
    for line in (root.read_text("/etc/group") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 4:
            continue
        if fields[2] == str(account.gid) or account.name in fields[3].split(","):
            names.append(fields[0])
    return names


def read_os_release(root: VolumeRoot) -> Dict[str, str]:
    text = root.read_text("/etc/os-release") or root.read_text("/usr/lib/os-release") or ""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    return values


def distro_name(root: VolumeRoot) -> str:
    release = read_os_release(root)
    return " ".join(
        part for part in (release.get("ID", "unknown"), release.get("VERSION_ID", "")) if part
    )


def _parse_key_line(line: str) -> Optional[Tuple[str, str]]:
    """(options, blob) of an authorized_keys line, None for comments and blank lines."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    for index, word in enumerate(words[:-1]):
        if word.startswith(KEY_TYPE_PREFIXES):
            return " ".join(words[:index]), words[index + 1]
    return None


def key_blobs(text: str) -> List[str]:
    """The base64 blob of every key line, with options or without."""
    return [parsed[1] for parsed in map(_parse_key_line, text.splitlines()) if parsed]


def has_unforced_key(text: str) -> bool:
    """Whether some key line carries no forced command (so the account is really used)."""
    return any(
        parsed and "command=" not in parsed[0] for parsed in map(_parse_key_line, text.splitlines())
    )


class SELinuxLabels:
    """Keeps SELinux labels right for inodes the agent creates, or asks for a relabel.

    A new inode gets its parent directory's label; `.ssh` and what is inside it get the
    type ssh_home_t, which sshd_t may read, instead of the home's user_home_dir_t.
    """

    def __init__(self, root: VolumeRoot, can_set: bool) -> None:
        config = root.read_text("/etc/selinux/config") or ""
        mode = ""
        for line in config.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "SELINUX":
                mode = value.strip().strip("\"'").lower()
        self.active = mode in ("enforcing", "permissive")
        self.can_set = can_set
        self.copied = False
        self.relabel_needed = False

    def label(self, parent_fd: int, new_fd: int, ssh_object: bool) -> None:
        if not self.active:
            return
        if not self.can_set:
            self.relabel_needed = True
            return
        try:
            context = os.getxattr(parent_fd, SELINUX_XATTR)
            os.setxattr(new_fd, SELINUX_XATTR, _ssh_type(context) if ssh_object else context)
            self.copied = True
        except OSError:
            self.relabel_needed = True

    def action(self) -> str:
        if self.relabel_needed:
            return "autorelabel"
        return "label-copied" if self.copied else "none"


def _ssh_type(context: bytes) -> bytes:
    parts = context.rstrip(b"\0").split(b":", 3)
    if len(parts) == 4 and parts[2] in (b"user_home_dir_t", b"user_home_t", b"home_root_t"):
        parts[2] = b"ssh_home_t"
        return b":".join(parts) + b"\0"
    return context


class UserOutcome(NamedTuple):
    name: str
    uid: int
    files: List[str]
    added: bool
    refused: Optional[str]

    def as_report(self) -> Dict[str, Any]:
        report: Dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "files": self.files,
            "added": self.added,
        }
        if self.refused:
            report["refused"] = self.refused
        return report


class KeyInjector:
    """Adds one key for the chosen users of one volume and counts what it changed."""

    def __init__(
        self,
        root: VolumeRoot,
        key: PublicKey,
        as_root: bool,
        unavailable: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.root = root
        self.unavailable = dict(unavailable or {})  # mount points not on this volume -> why
        self.key = key
        self.as_root = as_root
        self.changed_files = 0
        self.selinux = SELinuxLabels(root, can_set=as_root)
        self.directives: List[Directive] = read_directives(root)

    def identity(self, account: Account) -> UserIdentity:
        return UserIdentity(
            account.name, account.uid, account.home, read_group_names(self.root, account)
        )

    def choose_users(self, accounts: List[Account]) -> List[Account]:
        chosen = []
        for account in accounts:
            if not account.can_log_in:
                continue
            files = self._key_files(account)
            existing = [path for path in files if self.root.resolve(path, follow_last=False)[1]]
            if account.uid == 0:
                if existing and self._root_uses_keys(account, existing):
                    chosen.append(account)
            elif existing or account.name in CLOUD_USERS:
                chosen.append(account)
        return chosen

    def _key_files(self, account: Account) -> List[str]:
        try:
            return authorized_keys_files(self.directives, self.identity(account))
        except RescueError:
            return []

    def _root_uses_keys(self, account: Account, existing: List[str]) -> bool:
        if permit_root_login(self.directives, self.identity(account)) not in ROOT_KEY_LOGINS:
            return False
        return any(has_unforced_key(self.root.read_text(path) or "") for path in existing)

    def inject(self, account: Account) -> UserOutcome:
        try:
            files = authorized_keys_files(self.directives, self.identity(account))
        except RescueError as exc:
            return UserOutcome(account.name, account.uid, [], False, str(exc))
        if not files:
            return UserOutcome(
                account.name,
                account.uid,
                [],
                False,
                "sshd_config sets AuthorizedKeysFile none: only AuthorizedKeysCommand gives keys",
            )
        elsewhere = self._unavailable(account.home, files[0])
        if elsewhere:
            return UserOutcome(account.name, account.uid, [files[0]], False, elsewhere)
        for path in files:
            if self.key.blob in key_blobs(self.root.read_text(path) or ""):
                return UserOutcome(account.name, account.uid, [path], False, None)
        home, home_exists = self.root.resolve(account.home)
        if not home_exists:
            return UserOutcome(
                account.name,
                account.uid,
                [files[0]],
                False,
                f"home directory {account.home} does not exist on the volume",
            )
        try:
            self._append(files[0], account, home)
        except RescueError as exc:
            return UserOutcome(account.name, account.uid, [files[0]], False, str(exc))
        except OSError as exc:  # e.g. a full or read-only volume: say which file, go on
            reason = f"writing {files[0]} failed: {exc.strerror or exc}"
            return UserOutcome(account.name, account.uid, [files[0]], False, reason)
        return UserOutcome(account.name, account.uid, [files[0]], True, None)

    def _unavailable(self, *paths: str) -> Optional[str]:
        """Why a path lies on a filesystem not on this volume (what is under it here is stale)."""
        for path in paths:
            real = as_path(self.root.resolve(path)[0])
            for mountpoint, reason in self.unavailable.items():
                if real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/"):
                    return f"{path} is on {mountpoint}: {reason}"
        return None

    def _append(self, path: str, account: Account, home: List[str]) -> None:
        parent, _ = self.root.resolve(posixpath.dirname(path))
        name = posixpath.basename(path)
        dir_fd = self._ensure_dirs(parent, account, home)
        try:
            in_home = parent[: len(home)] == home
            try:
                info: Optional[os.stat_result] = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                info = None
            if info is None:
                self._create_file(dir_fd, name, account, ssh_object=in_home)
                return
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
            self._append_existing(dir_fd, name, path, account, info)
            if in_home:
                self._tighten(dir_fd)
        finally:
            os.close(dir_fd)

    def _ensure_dirs(self, components: List[str], account: Account, home: List[str]) -> int:
        """Open the directory, creating missing components (owned per the class docstring)."""
        fd = os.dup(self.root.fd)
        try:
            for depth, name in enumerate(components, start=1):
                try:
                    next_fd = os.open(
                        name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                    )
                except FileNotFoundError:
                    next_fd = self._make_dir(fd, name, components[:depth], account, home)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise RescueError(
                            f"{as_path(components[:depth])} is not a directory"
                        ) from exc
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_dir(
        self, parent_fd: int, name: str, components: List[str], account: Account, home: List[str]
    ) -> int:
        in_home = components[: len(home)] == home and len(components) > len(home)
        os.mkdir(name, 0o700 if in_home else 0o755, dir_fd=parent_fd)
        fd = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd
        )
        os.fchmod(fd, 0o700 if in_home else 0o755)  # mkdir's mode passes through the umask
        if in_home and self.as_root:
            os.fchown(fd, account.uid, account.gid)
        self.selinux.label(parent_fd, fd, ssh_object=in_home)
        self.changed_files += 1
        return fd

    def _create_file(self, dir_fd: int, name: str, account: Account, ssh_object: bool) -> None:
        fd = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            os.fchmod(fd, 0o600)
            if self.as_root:
                os.fchown(fd, account.uid, account.gid)
            self.selinux.label(dir_fd, fd, ssh_object=ssh_object)
            os.write(fd, (self.key.line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.changed_files += 1

    def _append_existing(
        self, dir_fd: int, name: str, path: str, account: Account, before: os.stat_result
    ) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
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
            os.write(fd, separator + (self.key.line + "\n").encode())
            os.fsync(fd)
            # sshd's StrictModes ignores a key file others can write: that alone locks users out.
            if info.st_mode & 0o022:
                os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~0o022)
            if self.as_root and info.st_uid not in (0, account.uid):
                os.fchown(fd, account.uid, account.gid)
        finally:
            os.close(fd)
        self.changed_files += 1

    def _tighten(self, dir_fd: int) -> None:
        info = os.fstat(dir_fd)
        if info.st_mode & 0o022:
            os.fchmod(dir_fd, stat.S_IMODE(info.st_mode) & ~0o022)
            self.changed_files += 1

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


def inject_key(
    root_path: Path, key: PublicKey, unavailable: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """Repair a Linux root tree at root_path; the report fields of the agent's JSON line.

    unavailable: home mount points whose filesystem is not on this volume -> why; users
    whose keys would go there are refused, not written into the stale directory below.
    """
    as_root = os.geteuid() == 0
    with VolumeRoot(root_path) as root:
        injector = KeyInjector(root, key, as_root, unavailable)
        accounts = injector.choose_users(read_accounts(root))
        if not accounts:
            raise RescueError(
                "no login user to give the key to: the volume's /etc/passwd has none of the "
                f"default cloud users ({', '.join(CLOUD_USERS)}) and no user with an "
                "authorized_keys file"
            )
        outcomes = [injector.inject(account) for account in accounts]
        selinux = injector.finish()
        if not any(outcome.refused is None for outcome in outcomes):
            reasons = "; ".join(f"{outcome.name}: {outcome.refused}" for outcome in outcomes)
            raise RescueError(f"no user could be given the key: {reasons}")
        report: Dict[str, Any] = {
            "distro": distro_name(root),
            "users": [outcome.as_report() for outcome in outcomes],
            "fingerprint": key.fingerprint,
            "selinux": selinux,
            "changed_files": injector.changed_files,
        }
        if not as_root:
            report["ownership"] = "skipped: not root"
        return report


def has_linux_root(root: VolumeRoot) -> bool:
    return root.exists("/etc/os-release") or root.exists("/usr/lib/os-release")
