"""Find the root filesystem on a disk and mount it read-write at a private mount point.

Whatever happens, what was mounted is synced and unmounted, LVM deactivated, temporary
device nodes and mount points removed (an ExitStack unwinds them in reverse order).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from . import RescueError, lvm
from .devices import disk_name
from .inroot import VolumeRoot
from .linux import has_linux_root
from .proc import run

LINUX_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs")
WINDOWS_FILESYSTEMS = ("ntfs",)
BTRFS_ROOT_SUBVOLUMES = ("@", "root", "@root", "@rootfs")  # Ubuntu/Debian, Fedora, others
SKIP_PART_TYPES = {
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "swap",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
    "0x82": "swap",
    "0xef": "EFI system",
    "0x5": "extended",
    "0xf": "extended",
    "0x85": "extended",
    "0x27": "Windows recovery",
}
SKIP_FILESYSTEMS = ("swap", "vfat")
SAFE_OPTIONS = "nodev,nosuid,noexec"  # the volume's device nodes and setuid files stay inert
NODE_WAIT = 2.0  # udev creates partition nodes within a second; after that we make our own
NTFS_PROBE_CODES = {
    12: "holds no valid NTFS",
    13: "has an inconsistent NTFS: run chkdsk on Windows, or restore the backup",
    14: "is hibernated (Windows hibernation or Fast Startup): the agent will not discard the "
    "hibernation file; start the instance, shut Windows down fully, and retry",
    15: "was not cleanly unmounted: start the instance, shut Windows down fully, and retry",
    16: "is in use by another driver",
}


class Candidate(NamedTuple):
    path: Path  # device node to mount
    name: str  # kernel name, e.g. nvme1n1p1
    fstype: str
    size: int


class MountedRoot(NamedTuple):
    path: Path
    device: str
    partition: str
    filesystem: str
    details: Dict[str, object]


def blkid(path: Path) -> Dict[str, str]:
    """Low-level probe (no udev or blkid cache): TYPE, PTTYPE, PART_ENTRY_TYPE, ..."""
    done = run(["blkid", "-p", "-o", "export", str(path)], check=False)
    values = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def _sys_block(name: str) -> Path:
    return Path("/sys/class/block") / name


def _partition_names(disk: str) -> List[str]:
    children = [child for child in _sys_block(disk).iterdir() if (child / "partition").exists()]
    return [
        child.name for child in sorted(children, key=lambda c: int((c / "partition").read_text()))
    ]


def partition_nodes(disk_path: Path, node_dir: Path) -> List[Path]:
    """Device nodes of the disk's partitions, asking the kernel to scan them if needed."""
    disk = disk_name(disk_path)
    names = _partition_names(disk)
    if not names and blkid(disk_path).get("PTTYPE"):
        # Loop devices and some hotplug paths leave the table unread.
        run(["partx", "--add", str(disk_path)], check=False)
        names = _partition_names(disk)
    return [_node(name, node_dir) for name in names]


def _node(name: str, node_dir: Path) -> Path:
    """/dev/NAME once udev made it, else a node of our own (helpers without udev)."""
    major, minor = (_sys_block(name) / "dev").read_text().strip().split(":")
    wanted = os.makedev(int(major), int(minor))
    deadline = time.monotonic() + NODE_WAIT
    while time.monotonic() < deadline:
        with suppress(OSError):
            info = Path("/dev", name).stat()
            # A stale node of another device under this name must not be mounted.
            if stat.S_ISBLK(info.st_mode) and info.st_rdev == wanted:
                return Path("/dev", name)
        time.sleep(0.1)
    node = node_dir / name
    os.mknod(node, 0o600 | stat.S_IFBLK, wanted)
    return node


def _size(name: str) -> int:
    try:
        return int((_sys_block(name) / "size").read_text()) * 512
    except OSError:
        return 0


def mounted_devices() -> Dict[str, str]:
    """major:minor -> mount point for everything mounted now."""
    found: Dict[str, str] = {}
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            found.setdefault(fields[2], fields[4])
    return found


def refuse_busy(disk_path: Path) -> None:
    """A disk with mounted or held partitions is in use: never mount it a second time."""
    disk = disk_name(disk_path)
    mounted = mounted_devices()
    for name in [disk, *_partition_names(disk)]:
        dev = (_sys_block(name) / "dev").read_text().strip()
        if dev in mounted:
            raise RescueError(f"/dev/{name} is already mounted at {mounted[dev]}: unmount it first")
        holders = sorted(p.name for p in (_sys_block(name) / "holders").glob("*"))
        if holders:
            raise RescueError(
                f"/dev/{name} is in use by {', '.join(holders)}: deactivate them first"
            )


def _mount(source: Path, target: Path, fstype: str, options: str) -> None:
    kind = "ntfs-3g" if fstype == "ntfs" else fstype
    done = run(["mount", "-t", kind, "-o", options, str(source), str(target)], check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if "Structure needs cleaning" in message or "corrupt" in message.lower():
            hint = "xfs_repair" if fstype == "xfs" else "fsck"
            raise RescueError(
                f"{source} ({fstype}) needs repair before it can be mounted: {message}. The agent "
                f"never repairs filesystems itself; run {hint} on a helper or restore the backup"
            )
        if "write-protected" in message or "read-only" in message:
            raise RescueError(f"{source} is read-only: attach the volume read-write ({message})")
        raise RescueError(f"mounting {source} ({fstype}) failed: {message}")


def _unmount(target: Path) -> None:
    os.sync()
    for _ in range(10):
        done = run(["umount", str(target)], check=False)
        if done.returncode == 0:
            return
        time.sleep(0.3)  # a short-lived opener (e.g. a udev probe) may still hold it
    raise RescueError(f"could not unmount {target}: {done.stderr.strip()}; unmount it by hand")


def _probe_options(fstype: str) -> str:
    """Read-only mounts that write nothing at all, not even a journal replay."""
    extra = {
        "ext2": "noload",
        "ext3": "noload",
        "ext4": "noload",
        "xfs": "norecovery,nouuid",
        "btrfs": "rescue=nologreplay",
    }.get(fstype)
    return ",".join(part for part in ("ro", SAFE_OPTIONS, extra) if part)


def _rw_options(fstype: str, subvolume: Optional[str]) -> str:
    parts = ["rw", SAFE_OPTIONS]
    if fstype == "xfs":
        parts.append("nouuid")  # volumes from one AMI share the helper's XFS UUID
    if subvolume:
        parts.append(f"subvol={subvolume}")
    return ",".join(parts)


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


def find_root(
    candidates: Sequence[Candidate], platform: str, probe_dir: Path
) -> Tuple[Optional[Candidate], Optional[str]]:
    """Probe candidates read-only, largest first; the first that holds an OS is the root."""
    for candidate in sorted(candidates, key=lambda c: -c.size):
        _mount(candidate.path, probe_dir, candidate.fstype, _probe_options(candidate.fstype))
        try:
            subvolume = _root_subvolume(probe_dir, platform)
        finally:
            _unmount(probe_dir)
        if subvolume is not None:
            return candidate, subvolume
    return None, None


def check_writable(candidate: Candidate) -> None:
    """Refuse, before any write, a read-only device or a filesystem that needs repair."""
    disk = _sys_block(candidate.name)
    parent = disk.resolve().parent
    for node in (disk, parent):
        ro = node / "ro"
        if ro.exists() and ro.read_text().strip() == "1":
            raise RescueError(
                f"{candidate.path} is read-only: attach the volume read-write and retry"
            )
    if candidate.fstype.startswith("ext"):
        header = run(["dumpe2fs", "-h", str(candidate.path)], check=False).stdout
        state = next(
            (
                line.split(":", 1)[1].strip()
                for line in header.splitlines()
                if line.startswith("Filesystem state:")
            ),
            "",
        )
        if state and state != "clean":
            raise RescueError(
                f"{candidate.path} ({candidate.fstype}) is marked '{state}' and needs a check: "
                "the agent never repairs filesystems itself; run "
                f"e2fsck -f {candidate.path} on a helper (after a snapshot) or restore the backup"
            )
    if candidate.fstype == "ntfs":
        code = run(["ntfs-3g.probe", "--readwrite", str(candidate.path)], check=False).returncode
        if code != 0:
            reason = NTFS_PROBE_CODES.get(
                code, f"cannot be mounted read-write (ntfs-3g.probe exit {code})"
            )
            raise RescueError(f"{candidate.path} {reason}")


def _verify_rw(mountpoint: Path) -> None:
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == str(mountpoint) and "rw" not in fields[5].split(","):
                raise RescueError(
                    f"{mountpoint} came up read-only: the filesystem has errors; check it"
                )


def _classify(
    paths: Sequence[Path], platform: str, skipped: List[str]
) -> Tuple[List[Candidate], List[str]]:
    """Filesystems that may hold the root, and LVM physical volumes, among these devices."""
    wanted = WINDOWS_FILESYSTEMS if platform == "windows" else LINUX_FILESYSTEMS
    found, pvs = [], []
    for path in paths:
        name = Path(os.path.realpath(path)).name  # the kernel name, also for LVM's dm-N
        info = blkid(path)
        fstype = info.get("TYPE", "")
        part_type = info.get("PART_ENTRY_TYPE", "").lower()
        if part_type in SKIP_PART_TYPES or fstype in SKIP_FILESYSTEMS:
            continue
        if fstype in wanted:
            found.append(Candidate(path, name, fstype, _size(name)))
        elif fstype == "LVM2_member":
            pvs.append(str(path))
        elif fstype:
            skipped.append(f"{path.name}: {fstype}")
    return found, pvs


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


def _lvm_runner(args: Sequence[str]) -> str:
    return str(run(args).stdout)


@contextmanager
def mount_volume_root(disk_path: Path, platform: str) -> Iterator[MountedRoot]:
    """Mount the root filesystem of the disk read-write; unmount and undo all on exit."""
    refuse_busy(disk_path)
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="rescue-"))
        stack.callback(_remove_workspace, work)
        (work / "probe").mkdir()
        (work / "root").mkdir()
        (work / "nodes").mkdir()
        whole = blkid(disk_path)
        nodes = [disk_path] if whole.get("TYPE") else partition_nodes(disk_path, work / "nodes")
        skipped: List[str] = []
        candidates, pvs = _classify(nodes, platform, skipped)
        active_groups: List[lvm.ActiveGroup] = []
        for group in lvm.target_groups(_lvm_runner, pvs) if pvs else []:
            active = stack.enter_context(lvm.activated(_lvm_runner, group))
            active_groups.append(active)
            candidates += _classify([Path(p) for p in active.lv_paths], platform, skipped)[0]
        root, subvolume = find_root(candidates, platform, work / "probe")
        if root is None:
            marker = "Windows/System32" if platform == "windows" else "etc/os-release"
            checked = ", ".join(f"{c.path.name} ({c.fstype})" for c in candidates) or "none"
            groups = [f"LVM VG {a.name} with {len(a.lv_paths)} LVs" for a in active_groups]
            if groups:
                checked += "; " + ", ".join(groups)
            unsupported = f"; unsupported filesystems: {', '.join(skipped)}" if skipped else ""
            raise RescueError(
                f"no {platform} root filesystem on {disk_path}: no filesystem holds {marker} "
                f"(checked: {checked}{unsupported}); is this the right volume?"
            )
        check_writable(root)
        mountpoint = work / "root"
        _mount(root.path, mountpoint, root.fstype, _rw_options(root.fstype, subvolume))
        stack.callback(_unmount, mountpoint)
        _verify_rw(mountpoint)
        details: Dict[str, object] = {}
        if subvolume:
            details["subvolume"] = subvolume
        if active_groups:
            details["lvm"] = [active.name for active in active_groups]
            with VolumeRoot(mountpoint) as volume:
                for active in active_groups:
                    if lvm.update_devices_file(volume, active.pvid_changes):
                        details["lvm_devices_file"] = "updated"
        yield MountedRoot(mountpoint, str(disk_path), str(root.path), root.fstype, details)
