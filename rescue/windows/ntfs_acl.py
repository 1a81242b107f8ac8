"""NTFS security descriptors through ntfs-3g's system.ntfs_acl extended attribute.

Files the agent creates get SYSTEM and Administrators full control, Authenticated Users
read, as ntfs-3g would otherwise give them "Everyone: full control".
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from typing import Optional

NTFS_ACL_XATTR = "system.ntfs_acl"  # ntfs-3g's view of a file's security descriptor


def _sid(authority: int, *subauthorities: int) -> bytes:
    count = len(subauthorities)
    return (
        struct.pack("<BB", 1, count)
        + authority.to_bytes(6, "big")
        + struct.pack(f"<{count}I", *subauthorities)
    )


SID_SYSTEM = _sid(5, 18)
SID_ADMINISTRATORS = _sid(5, 32, 544)
SID_AUTHENTICATED_USERS = _sid(5, 11)
FILE_ALL_ACCESS = 0x001F01FF
FILE_GENERIC_READ_EXECUTE = 0x001200A9
INHERIT_TO_FILES_AND_DIRS = 0x03  # OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE


def security_descriptor(directory: bool) -> bytes:
    """Self-relative descriptor: SYSTEM and Administrators full control, users read.

    What Windows gives C:\\Windows\\System32\\GroupPolicy; directories pass it on to what
    Windows later creates inside them.
    """
    flags = INHERIT_TO_FILES_AND_DIRS if directory else 0
    aces = b"".join(
        struct.pack("<BBHI", 0, flags, 8 + len(sid), mask) + sid  # ACCESS_ALLOWED_ACE
        for mask, sid in (
            (FILE_ALL_ACCESS, SID_SYSTEM),
            (FILE_ALL_ACCESS, SID_ADMINISTRATORS),
            (FILE_GENERIC_READ_EXECUTE, SID_AUTHENTICATED_USERS),
        )
    )
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 3, 0) + aces
    owner = 20 + len(acl)
    group = owner + len(SID_ADMINISTRATORS)
    control = 0x8004  # SE_SELF_RELATIVE | SE_DACL_PRESENT
    header = struct.pack("<BBHIIII", 1, 0, control, owner, group, 0, 20)
    return header + acl + SID_ADMINISTRATORS + SID_SYSTEM


def protect(path: Path, like: Optional[Path], directory: bool) -> None:
    """Give a new file `like`'s descriptor, else the safe one. A no-op off NTFS."""
    if not hasattr(os, "setxattr"):  # the local engine on a non-Linux workstation
        return
    value: Optional[bytes] = None
    if like is not None:
        try:
            value = os.getxattr(like, NTFS_ACL_XATTR, follow_symlinks=False)
        except OSError:
            value = None
    # Off ntfs-3g (the local engine's plain trees) there is no Windows descriptor to set.
    with contextlib.suppress(OSError):
        os.setxattr(
            path, NTFS_ACL_XATTR, value or security_descriptor(directory), follow_symlinks=False
        )
