"""Which filesystem of the disk is the root: read-only probes before anything is written.

Each candidate is mounted read-only (largest first) and looked at: an OS root, a btrfs root
subvolume, or a root the agent cannot repair (OSTree, a separate read-only /usr). The root
found carries what the home mounts need later: its fstab, the login homes, the homes that
systemd units or autofs mount. An XFS with a dirty log is looked at again after a replay.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .. import RescueError
from ..linux.inroot import VolumeRoot, as_path
from ..linux.users import has_linux_root, read_accounts
from . import fstab
from .mounting import SAFE_OPTIONS, mount, probe_options, read_only, unmount
from .volumes import Candidate
from .xfs_log import LogState, xfs_log_state

BTRFS_ROOT_SUBVOLUMES = ("@", "root", "@root", "@rootfs")  # Ubuntu/Debian, Fedora, others


class Found(NamedTuple):
    """The root filesystem, decided from read-only probes before anything is written."""

    candidate: Candidate
    subvolume: str
    fstab: str  # the root's /etc/fstab
    homes: List[str]  # login users' homes, symlinks resolved in the volume
    other_mounts: Dict[str, str]  # home mount points of systemd units and autofs -> why
    xfs_log: str  # for the report: how an XFS log was recovered to find it, "" if not


class Look(NamedTuple):
    """What a read-only probe saw on one filesystem."""

    subvolume: Optional[str]  # as _root_subvolume
    unsupported: str  # why a root here cannot be repaired, '' if none
    usr_name: str  # NAME= of a separate /usr filesystem (lib/os-release at its top)


def _is_windows_root(path: Path) -> bool:
    """Windows/System32 in any letter case, as NTFS is case-insensitive but ntfs-3g is not."""
    current = path
    for wanted in ("windows", "system32"):
        try:
            match = next(e for e in os.scandir(current) if e.name.lower() == wanted and e.is_dir())
        except StopIteration:
            return False
        current = Path(match.path)
    return True


def _root_subvolume(mountpoint: Path, platform: str) -> Optional[str]:
    """'' if the mount itself is the root, a btrfs subvolume name if one is, else None."""
    if platform == "windows":
        return "" if _is_windows_root(mountpoint) else None
    with VolumeRoot(mountpoint) as root:
        if has_linux_root(root):
            return ""
        for name in BTRFS_ROOT_SUBVOLUMES:
            if (mountpoint / name).is_dir() and not (mountpoint / name).is_symlink():
                with VolumeRoot(mountpoint / name) as sub:
                    if has_linux_root(sub):
                        return name
    return None


def _os_name(root: VolumeRoot, path: str) -> str:
    for line in (root.read_text(path) or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "NAME":
            return value.strip().strip("\"'")
    return ""


def _unsupported(mountpoint: Path, root: VolumeRoot) -> str:
    """Why this is a Linux root the agent cannot repair, '' if it is none such."""
    if (mountpoint / "ostree" / "deploy").is_dir() and not root.exists("/etc/passwd"):
        releases = root.glob("/ostree/deploy/*/deploy/*/usr/lib/os-release")
        name = _os_name(root, releases[0]) if releases else ""
        return (
            f"an OSTree deployment{f' of {name}' if name else ''} (Fedora CoreOS, RHEL CoreOS, "
            "Fedora Atomic): its /etc and /usr live under /ostree/deploy/"
        )
    release = mountpoint / "etc" / "os-release"
    if release.is_symlink():
        target = str(release.readlink())
        components, exists = root.resolve("/etc/os-release")
        if not exists and components[:1] == ["usr"]:
            return (
                f"/etc/os-release is a symlink to {target} on a separate, read-only /usr "
                "partition (a Flatcar Container Linux style image)"
            )
    return ""


def _look(mountpoint: Path, platform: str) -> Look:
    subvolume = _root_subvolume(mountpoint, platform)
    if subvolume is not None or platform == "windows":
        return Look(subvolume, "", "")
    with VolumeRoot(mountpoint) as root:
        usr_name = ""
        if not root.exists("/etc") and (mountpoint / "bin").is_dir():
            usr_name = _os_name(root, "/lib/os-release")
        return Look(None, _unsupported(mountpoint, root), usr_name)


def _login_homes(root: VolumeRoot) -> List[str]:
    """Homes of the accounts that can log in, resolved in the volume (/home -> var/home)."""
    try:
        accounts = read_accounts(root)
    except RescueError:
        return []
    return sorted({as_path(root.resolve(a.home)[0]) for a in accounts if a.can_log_in})


def other_home_mounts(root: VolumeRoot, homes: List[str]) -> Dict[str, str]:
    """Homes mounted at boot by systemd mount units or autofs, which fstab does not name."""

    def texts(patterns: Sequence[str]) -> Dict[str, str]:
        found = {}
        for pattern in patterns:
            for path in root.glob(pattern):
                text = root.read_text(path)  # None for a masked unit (-> /dev/null)
                if text is not None:
                    found[path] = text
        return found

    units, masters = texts(fstab.UNIT_GLOBS), texts(fstab.AUTOFS_MASTERS)
    return fstab.other_mounts(units, masters, root.read_text, homes)


def _read_root(mountpoint: Path, subvolume: str) -> Tuple[str, List[str], Dict[str, str]]:
    with VolumeRoot(mountpoint / subvolume if subvolume else mountpoint) as root:
        homes = _login_homes(root)
        return root.read_text("/etc/fstab") or "", homes, other_home_mounts(root, homes)


def _replay_probe(
    candidate: Candidate, state: LogState, platform: str, probe_dir: Path
) -> Optional[Found]:
    """Mount read-only with log recovery (what the instance's next boot does), look again."""
    if state.unread:
        what = (
            f"{candidate.label} (xfs) shows no root without log recovery and the state of its "
            f"log could not be read ({state.unread})"
        )
    else:
        what = f"{candidate.label} (xfs) has a dirty log (the instance was not shut down cleanly)"
    if read_only(candidate):
        raise RescueError(
            f"{what} and is attached read-only, so the log cannot be replayed: attach the "
            "volume read-write and retry"
        )
    options = ",".join(("ro", SAFE_OPTIONS, "nouuid"))
    try:
        mount(candidate.path, probe_dir, "xfs", options)
    except RescueError as exc:
        raise RescueError(
            f"{what}, and mounting it with log recovery failed ({exc}): run xfs_repair on it "
            "from a helper after a snapshot (xfs_repair -L discards the log and the latest "
            "changes with it), or restore the backup"
        ) from exc
    try:
        look = _look(probe_dir, platform)
        if look.subvolume is None:
            return None
        how = f"recovered, its state unread: {state.unread}" if state.unread else "replayed"
        return Found(candidate, look.subvolume, *_read_root(probe_dir, look.subvolume), how)
    finally:
        unmount(probe_dir)


def find_root(candidates: Sequence[Candidate], platform: str, probe_dir: Path) -> Optional[Found]:
    """Probe candidates read-only, largest first; the first that holds an OS is the root.

    An XFS whose log is dirty (or whose log state cannot be read) may show stale contents
    without recovery: when nothing else holds the root, its log is replayed and it is
    looked at again.
    """
    unsupported: List[Tuple[Candidate, str]] = []
    usr_names: List[str] = []
    dirty: List[Tuple[Candidate, LogState]] = []
    for candidate in sorted(candidates, key=lambda c: -c.size):
        mount(candidate.path, probe_dir, candidate.fstype, probe_options(candidate.fstype))
        try:
            look = _look(probe_dir, platform)
            if look.subvolume is not None:
                return Found(candidate, look.subvolume, *_read_root(probe_dir, look.subvolume), "")
        finally:
            unmount(probe_dir)
        if look.unsupported:
            unsupported.append((candidate, look.unsupported))
        if look.usr_name:
            usr_names.append(look.usr_name)
        if candidate.fstype == "xfs":
            state = xfs_log_state(candidate.path)
            if state.dirty:
                dirty.append((candidate, state))
    if unsupported:
        candidate, why = unsupported[0]
        name = f" ({usr_names[0]})" if usr_names else ""
        raise RescueError(
            f"{candidate.label} holds a Linux root{name} the agent does not repair: {why}. Its "
            "keys come from its own provisioning (Ignition) and its sshd settings live in "
            "/usr; nothing was changed. Add the key by hand to the core user's "
            "~/.ssh/authorized_keys on that volume, or provision a new instance"
        )
    for candidate, state in dirty:
        found = _replay_probe(candidate, state, platform, probe_dir)
        if found is not None:
            return found
    return None
