"""SELinux labels for the directories and key files the agent creates on a volume.

sshd (sshd_t) may read keys only under ssh_home_t: a new `.ssh` and the file in it get
that type, other new inodes their parent's label; where a label cannot be set, the volume
is marked for a relabel at its next boot (/.autorelabel).
"""

from __future__ import annotations

import os

from .inroot import VolumeRoot

SELINUX_XATTR = "security.selinux"


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
            os.setxattr(new_fd, SELINUX_XATTR, ssh_type(context) if ssh_object else context)
            self.copied = True
        except OSError:
            self.relabel_needed = True

    def action(self) -> str:
        if self.relabel_needed:
            return "autorelabel"
        return "label-copied" if self.copied else "none"


def ssh_type(context: bytes) -> bytes:
    parts = context.rstrip(b"\0").split(b":", 3)
    if len(parts) == 4 and parts[2] in (b"user_home_dir_t", b"user_home_t", b"home_root_t"):
        parts[2] = b"ssh_home_t"
        return b":".join(parts) + b"\0"
    return context
