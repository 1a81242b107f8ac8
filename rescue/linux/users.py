"""The volume's accounts: its /etc/passwd and /etc/group, who can log in, which distro it is."""

from __future__ import annotations

import posixpath  # paths inside the volume are POSIX strings, not local Paths
from typing import Dict, List, NamedTuple, Optional, Tuple

from .. import RescueError
from .inroot import VolumeRoot
from .sshd_config import ROOT_HOME_KEY

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


MAX_ID = 4294967294  # uid_t is 32 bits and (uid_t)-1 means "no change" to chown(2)


class Account(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def can_log_in(self) -> bool:
        return posixpath.basename(self.shell) not in NO_LOGIN_SHELLS


def parse_id(text: str) -> Optional[int]:
    """A uid/gid field as the C library reads it: ASCII digits only (int() takes '٣')."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def read_passwd(root: VolumeRoot) -> Tuple[List[Account], List[str]]:
    """The volume's accounts, first entry per name (what getpwnam gives sshd), and why
    other entries were skipped."""
    text = root.read_text("/etc/passwd")
    if text is None:
        raise RescueError("the volume has no /etc/passwd: it is not a Linux root filesystem")
    accounts: List[Account] = []
    skipped: List[str] = []
    seen = set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")) or not fields[0]:
            continue
        name = fields[0]
        uid, gid = parse_id(fields[2]), parse_id(fields[3])
        if uid is None or gid is None:
            bad = f"uid {fields[2]!r}" if uid is None else f"gid {fields[3]!r}"
            skipped.append(
                f"/etc/passwd line {number} ({name}): {bad} is not a number from 0 to {MAX_ID}; "
                "user skipped (fix the entry to use it)"
            )
            continue
        if name in seen:
            skipped.append(
                f"/etc/passwd line {number} ({name}): a second entry for {name}; sshd uses the "
                "first, so this one is skipped"
            )
            continue
        seen.add(name)
        # passwd(5): an empty shell field means /bin/sh.
        accounts.append(Account(name, uid, gid, fields[5] or "/", fields[6] or "/bin/sh"))
    return accounts, skipped


def read_accounts(root: VolumeRoot) -> List[Account]:
    return read_passwd(root)[0]


def read_group_names(root: VolumeRoot, account: Account) -> List[str]:
    """The account's groups (primary and supplementary) from the volume's /etc/group."""
    names = []
    for line in (root.read_text("/etc/group") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 4:
            continue
        if parse_id(fields[2]) == account.gid or account.name in fields[3].split(","):
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


def passwd_homes(accounts: List[Account]) -> Dict[str, str]:
    """Homes by name as getpwnam finds them (first entry), root's as getpwuid(0) does."""
    homes: Dict[str, str] = {}
    for account in accounts:
        homes.setdefault(account.name, account.home)
        if account.uid == 0:
            homes.setdefault(ROOT_HOME_KEY, account.home)
    return homes


def has_linux_root(root: VolumeRoot) -> bool:
    return root.exists("/etc/os-release") or root.exists("/usr/lib/os-release")
