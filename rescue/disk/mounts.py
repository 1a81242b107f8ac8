"""Mount the root filesystem of a disk read-write at a private mount point, homes with it.

Whatever happens, what was mounted is synced and unmounted, LVM deactivated, temporary
device nodes and mount points removed (an ExitStack unwinds them in reverse order).
Which filesystems there are: volumes; which is the root: root_probe; one mount: mounting.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple

from .. import RescueError
from ..linux.inroot import VolumeRoot
from . import fstab
from .mounting import check_writable, mount, rw_options, unmount, verify_rw
from .partitions import disk_nodes, refuse_busy
from .proc import run
from .root_probe import Found, find_root
from .volumes import LINUX_FILESYSTEMS, Volume, classify, lvm_volumes


class MountedRoot(NamedTuple):
    path: Path
    device: str
    partition: str
    filesystem: str
    details: Dict[str, object]
    unavailable: Dict[str, str]  # home mount points not on this volume -> why


def _remove_workspace(work: Path) -> None:
    """Remove our own nodes and empty directories only: never recurse into a mount point.

    Were an unmount to fail, a recursive delete would walk into the customer's volume.
    """
    if (work / "nodes").is_dir():
        for node in (work / "nodes").iterdir():
            node.unlink()
    for directory in ("nodes", "probe", "root", ""):
        # A directory still mounted stays: the unmount error already names it.
        with suppress(OSError):
            (work / directory).rmdir()


def _mount_homes(
    stack: ExitStack,
    mountpoint: Path,
    found: Found,
    volumes: Sequence[Volume],
    created: List[str],
) -> Tuple[List[Dict[str, str]], Dict[str, str]]:
    """Mount, read-write and under the root, the filesystems fstab puts the homes on."""
    by_path = {volume.device.path: volume for volume in volumes}
    plan, unavailable = fstab.plan(
        fstab.parse(found.fstab), found.homes, [v.device for v in volumes]
    )
    for where, why in found.other_mounts.items():
        unavailable.setdefault(where, why)
    mounted: List[Dict[str, str]] = []
    for home in plan:
        candidate = by_path[home.device.path].candidate
        where = home.entry.mountpoint
        if candidate.fstype not in LINUX_FILESYSTEMS:
            unavailable[where] = f"{candidate.label} holds {candidate.fstype}, not supported"
            continue
        try:
            check_writable(candidate)
        except RescueError as exc:
            unavailable[where] = str(exc)
            continue
        with VolumeRoot(mountpoint) as root:
            components, exists = root.resolve(where)
        target = mountpoint.joinpath(*components)
        if not exists:
            made = [
                mountpoint.joinpath(*components[:depth])
                for depth in range(1, len(components) + 1)
                if not mountpoint.joinpath(*components[:depth]).exists()
            ]
            target.mkdir(mode=0o755, parents=True)  # as systemd makes missing mount points
            created.extend("/" + str(path.relative_to(mountpoint)) for path in made)
        subvolume = home.subvolume.partition("=")[2] if home.subvolume else None
        options = rw_options(candidate.fstype, None)
        if home.subvolume:
            options += f",{home.subvolume}"
        mount(candidate.path, target, candidate.fstype, options)
        stack.callback(unmount, target)
        verify_rw(target)
        entry = {"mountpoint": where, "partition": candidate.label}
        if subvolume:
            entry["subvolume"] = subvolume
        mounted.append(entry)
    return mounted, unavailable


@contextmanager
def mount_volume_root(disk_path: Path, platform: str) -> Iterator[MountedRoot]:
    """Mount the root filesystem of the disk read-write; unmount and undo all on exit.

    Everything is decided from read-only probes first (which filesystem is the root,
    which hold the homes); only then is anything mounted read-write.
    """
    with suppress(RescueError):  # no udev (containers, tests): nothing to wait for
        # Let the attach's udev events (partition nodes, LVM auto-activation) finish first.
        run(["udevadm", "settle", "--timeout=10"], check=False)
    refuse_busy(disk_path)
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="rescue-"))
        stack.callback(_remove_workspace, work)
        (work / "probe").mkdir()
        (work / "root").mkdir()
        (work / "nodes").mkdir()
        notes: List[str] = []
        nodes = disk_nodes(disk_path, work / "nodes", notes)
        skipped: List[str] = []
        details: Dict[str, object] = {}
        groups: List[str] = []
        volumes, pvs = classify(nodes, platform, skipped)
        if pvs:
            volumes += lvm_volumes(stack, pvs, platform, skipped, groups, details, notes)
        candidates = [volume.candidate for volume in volumes]
        found = find_root(candidates, platform, work / "probe")
        if found is None:
            marker = "Windows/System32" if platform == "windows" else "etc/os-release"
            checked = ", ".join(f"{Path(c.label).name} ({c.fstype})" for c in candidates)
            checked = "; ".join([checked or "none", *groups])
            unsupported = f"; unsupported filesystems: {', '.join(skipped)}" if skipped else ""
            noted = f"; {'; '.join(notes)}" if notes else ""
            raise RescueError(
                f"no {platform} root filesystem on {disk_path}: no filesystem holds {marker} "
                f"(checked: {checked}{unsupported}{noted}); is this the right volume?"
            )
        root = found.candidate
        check_writable(root)
        mountpoint = work / "root"
        mount(root.path, mountpoint, root.fstype, rw_options(root.fstype, found.subvolume))
        stack.callback(unmount, mountpoint)
        verify_rw(mountpoint)
        created: List[str] = []  # mount points made on the customer's root, for the report
        homes, unavailable = (
            _mount_homes(stack, mountpoint, found, volumes, created)
            if platform == "linux"
            else ([], {})
        )
        if created:
            details["created_mountpoints"] = created
        if found.subvolume:
            details["subvolume"] = found.subvolume
        if found.xfs_log:
            details["xfs_log"] = found.xfs_log
        details["notes"] = notes  # the same list: a failed LVM deactivation adds to it
        if homes:
            details["homes"] = homes
        if unavailable:
            details["unavailable_homes"] = unavailable
        yield MountedRoot(mountpoint, str(disk_path), root.label, root.fstype, details, unavailable)
    if not notes:
        del details["notes"]
