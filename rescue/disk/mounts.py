"""Find the root filesystem on a disk and mount it read-write at a private mount point.

Whatever happens, what was mounted is synced and unmounted, LVM deactivated, temporary
device nodes and mount points removed (an ExitStack unwinds them in reverse order).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from itertools import islice
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .. import RescueError
from ..linux.inroot import VolumeRoot, as_path
from ..linux.users import has_linux_root, read_accounts
from . import fstab, lvm
from .devices import disk_name
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
    shown: str = ""  # the name a user knows it by, when the node is ours (an LV's loop)

    @property
    def label(self) -> str:
        return self.shown or str(self.path)


class MountedRoot(NamedTuple):
    path: Path
    device: str
    partition: str
    filesystem: str
    details: Dict[str, object]
    unavailable: Dict[str, str]  # home mount points not on this volume -> why


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


def blkid(path: Path) -> Dict[str, str]:
    """Low-level probe (no udev or blkid cache): TYPE, PTTYPE, PART_ENTRY_TYPE, ..."""
    done = run(["blkid", "-p", "-o", "export", str(path)], check=False)
    values = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def sys_block(name: str) -> Path:
    return Path("/sys/class/block") / name


def _partition_names(disk: str) -> List[str]:
    children = [child for child in sys_block(disk).iterdir() if (child / "partition").exists()]
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
    major, minor = (sys_block(name) / "dev").read_text().strip().split(":")
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
        return int((sys_block(name) / "size").read_text()) * 512
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
        dev = (sys_block(name) / "dev").read_text().strip()
        if dev in mounted:
            raise RescueError(f"/dev/{name} is already mounted at {mounted[dev]}: unmount it first")
        holders = sorted(p.name for p in (sys_block(name) / "holders").glob("*"))
        if holders and not all(idle_lv(holder, mounted) for holder in holders):
            raise RescueError(
                f"/dev/{name} is in use by {', '.join(holders)}: deactivate them first"
            )


def idle_lv(holder: str, mounted: Dict[str, str]) -> bool:
    """An unmounted, unstacked LV: what the helper's lvm2 auto-activation leaves."""
    node = sys_block(holder)
    try:
        lvm_uuid = (node / "dm" / "uuid").read_text().startswith("LVM-")
        dev = (node / "dev").read_text().strip()
    except OSError:
        return False
    return lvm_uuid and dev not in mounted and not any((node / "holders").glob("*"))


RELEASE_WAIT = 15.0  # seconds for an earlier mount of the device to let go of it


def _mounted_here(source: Path) -> bool:
    """Whether a mount in this namespace has the device as its source."""
    try:
        rdev = Path(source).stat().st_rdev
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(" - ", 1)[-1].split()
        if len(fields) < 2 or not fields[1].startswith("/"):
            continue
        with suppress(OSError):
            info = Path(fields[1].replace("\\040", " ")).stat()
            if stat.S_ISBLK(info.st_mode) and info.st_rdev == rdev:
                return True
    return False


def _wait_released(source: Path) -> None:
    """Wait until no superblock (or exclusive opener) holds the device.

    An unmount returns before the filesystem is shut down when another mount namespace
    (e.g. `unshare --mount`, a service's private namespace) copied the mount meanwhile.
    Mounting the device again then silently reuses that superblock with its old options:
    a "recovery" mount shows the norecovery probe's stale view, a read-write one fails
    with EBUSY. An exclusive open succeeds only once the filesystem let go of the device.
    A device mounted here already (a btrfs root and its home subvolume) is meant to share.
    """
    if _mounted_here(source):
        return
    deadline = time.monotonic() + RELEASE_WAIT
    while True:
        try:
            os.close(os.open(str(source), os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC))
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return  # not ours to judge here: the mount names any real problem
        if time.monotonic() >= deadline:
            raise RescueError(
                f"{source} is still held by a filesystem {RELEASE_WAIT:g} s after it was "
                "unmounted (a process in another mount namespace keeps a copy of the mount, "
                "or another program has the device open exclusively): find it with "
                "'grep -l <device> /proc/*/mountinfo', or retry later"
            )
        time.sleep(0.1)


def _mount(source: Path, target: Path, fstype: str, options: str) -> None:
    kind = "ntfs-3g" if fstype == "ntfs" else fstype
    _wait_released(source)
    done = run(["mount", "-t", kind, "-o", options, str(source), str(target)], check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if "Structure needs cleaning" in message or "corrupt" in message.lower():
            if blkid(source).get("PTTYPE"):
                # A repair tool run on a disk would overwrite its partition table.
                raise RescueError(
                    f"{source} does not mount as {fstype} ({message}) and holds a partition "
                    "table: run no repair tool on it; check its partitions one by one"
                )
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


def _other_mounts(root: VolumeRoot, homes: List[str]) -> Dict[str, str]:
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
        return root.read_text("/etc/fstab") or "", homes, _other_mounts(root, homes)


XFS_LOG_TRIES = 3  # a concurrent opener or a slow device can fail one read of the log
XFS_LOG_RETRY_DELAY = 0.5


class LogState(NamedTuple):
    dirty: bool  # holds changes not yet written in place, or may (state unknown)
    unread: str = ""  # why the state could not be read (xfs_logprint's error), else ""


def _xfs_logprint_state(path: Path) -> Tuple[Optional[bool], str]:
    """(dirty, "") from one xfs_logprint run, or (None, its error) when it printed no state."""
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                ["xfs_logprint", "-t", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise RescueError(
                "the tool 'xfs_logprint' is not installed on this machine: install the package "
                "'xfsprogs'"
            ) from exc
        status: Optional[int] = None
        with proc:
            try:
                # The state is in the header: the transactions after it may be megabytes.
                head = list(islice(proc.stdout or (), 20))
                if len(head) < 20:  # its output ended: it exited, or is about to
                    with suppress(subprocess.TimeoutExpired):
                        status = proc.wait(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
        for line in head:
            if "state:" in line:
                return "<DIRTY>" in line, ""
        stderr.seek(0)
        message = " ".join(stderr.read().decode(errors="replace").split())[:300] or "no message"
    if status:
        return None, f"xfs_logprint -t {path} failed (exit status {status}): {message}"
    return None, f"xfs_logprint -t {path} printed no log state in its first lines: {message}"


def xfs_log_state(path: Path) -> LogState:
    """Whether an XFS log holds changes not yet written in place (read-only check).

    A state that cannot be read, even after retries, never counts as clean: the log is
    treated as possibly dirty and the reason is kept for the messages that follow.
    """
    why = ""
    for attempt in range(XFS_LOG_TRIES):
        if attempt:
            time.sleep(XFS_LOG_RETRY_DELAY)
        dirty, why = _xfs_logprint_state(path)
        if dirty is not None:
            return LogState(dirty)
    return LogState(True, why)


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
    if _read_only(candidate):
        raise RescueError(
            f"{what} and is attached read-only, so the log cannot be replayed: attach the "
            "volume read-write and retry"
        )
    options = ",".join(("ro", SAFE_OPTIONS, "nouuid"))
    try:
        _mount(candidate.path, probe_dir, "xfs", options)
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
        _unmount(probe_dir)


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
        _mount(candidate.path, probe_dir, candidate.fstype, _probe_options(candidate.fstype))
        try:
            look = _look(probe_dir, platform)
            if look.subvolume is not None:
                return Found(candidate, look.subvolume, *_read_root(probe_dir, look.subvolume), "")
        finally:
            _unmount(probe_dir)
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


def _read_only(candidate: Candidate) -> bool:
    disk = sys_block(candidate.name)
    for node in (disk, disk.resolve().parent):
        ro = node / "ro"
        if ro.exists() and ro.read_text().strip() == "1":
            return True
    return False


def check_writable(candidate: Candidate) -> None:
    """Refuse, before any write, a read-only device or a filesystem that needs repair."""
    if _read_only(candidate):
        raise RescueError(f"{candidate.label} is read-only: attach the volume read-write and retry")
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
                f"{candidate.label} ({candidate.fstype}) is marked '{state}' and needs a check: "
                "the agent never repairs filesystems itself; run "
                f"e2fsck -f {candidate.label} on a helper (after a snapshot) or restore the backup"
            )
    if candidate.fstype == "ntfs":
        code = run(["ntfs-3g.probe", "--readwrite", str(candidate.path)], check=False).returncode
        if code != 0:
            reason = NTFS_PROBE_CODES.get(
                code, f"cannot be mounted read-write (ntfs-3g.probe exit {code})"
            )
            raise RescueError(f"{candidate.label} {reason}")


def _verify_rw(mountpoint: Path) -> None:
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == str(mountpoint) and "rw" not in fields[5].split(","):
                raise RescueError(
                    f"{mountpoint} came up read-only: the filesystem has errors; check it"
                )


class Volume(NamedTuple):
    """A filesystem of the disk: the root candidate and what fstab may call it."""

    candidate: Candidate
    device: fstab.Device


def _classify(
    paths: Sequence[Path],
    platform: str,
    skipped: List[str],
    lv_names: Optional[Dict[Path, lvm.LogicalVolume]] = None,
) -> Tuple[List[Volume], List[str]]:
    """Filesystems that may hold the root, and LVM physical volumes, among these devices."""
    wanted = WINDOWS_FILESYSTEMS if platform == "windows" else LINUX_FILESYSTEMS
    found, pvs = [], []
    for path in paths:
        name = Path(os.path.realpath(path)).name  # the kernel name, also for LVM's dm-N
        info = blkid(path)
        fstype = info.get("TYPE", "")
        part_type = info.get("PART_ENTRY_TYPE", "").lower()
        volume = (lv_names or {}).get(path)
        shown = volume.path if volume else ""
        if part_type in SKIP_PART_TYPES or fstype in SKIP_FILESYSTEMS:
            continue
        if fstype in wanted:
            device = fstab.Device(
                str(path),
                fstype,
                info.get("UUID", ""),
                info.get("LABEL", ""),
                info.get("PART_ENTRY_UUID", ""),
                info.get("PART_ENTRY_NAME", ""),
                int(info.get("PART_ENTRY_NUMBER", "0") or 0),
                volume.names if volume else (),
            )
            found.append(Volume(Candidate(path, name, fstype, _size(name), shown), device))
        elif fstype == "LVM2_member":
            pvs.append(str(path))
        elif fstype:
            skipped.append(f"{shown or path.name}: {fstype}")
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
def _loop_over(extent: lvm.Extent) -> Iterator[Path]:
    """A loop device over an LV's extents on its PV: the LV without device-mapper."""
    done = run(
        [
            "losetup",
            "--find",
            "--show",
            "--offset",
            str(extent.offset),
            "--sizelimit",
            str(extent.size),
            extent.pv,
        ]
    )
    loop = done.stdout.strip()
    try:
        yield Path(loop)
    finally:
        os.sync()
        run(["losetup", "--detach", loop], check=False)


def _disk_nodes(disk_path: Path, node_dir: Path, notes: List[str]) -> List[Path]:
    """The partitions when the disk has a partition table, else the whole disk.

    A filesystem signature on the whole disk beside a partition table is left over from
    before the disk was partitioned: the table is what the instance boots from.
    """
    whole = blkid(disk_path)
    if whole.get("PTTYPE"):
        if whole.get("TYPE"):
            notes.append(
                f"{disk_path} also carries a stale {whole['TYPE']} signature beside its "
                f"{whole['PTTYPE']} partition table: ignored"
            )
        return partition_nodes(disk_path, node_dir)
    return [disk_path] if whole.get("TYPE") else partition_nodes(disk_path, node_dir)


def _lvm_volumes(
    stack: ExitStack,
    pvs: List[str],
    platform: str,
    skipped: List[str],
    checked: List[str],
    details: Dict[str, object],
    notes: List[str],
) -> List[Volume]:
    """The filesystems on the target's LVs: plain linear ones through loops, others (thin,
    raid, snapshots and their origins) activated, so device-mapper keeps copy-on-write."""
    found: List[Volume] = []
    names: List[str] = []
    for group in lvm.target_groups(_lvm_runner, pvs):
        names.append(group.name)
        volumes = lvm.logical_volumes(_lvm_runner, group)
        if lvm.deactivate_if_active(_lvm_runner, group, volumes):
            details["lvm_auto_activation"] = "deactivated"
        if not all(volume.linear for volume in volumes):
            why = lvm.unreachable(volumes)
            volumes = stack.enter_context(lvm.activated(_lvm_runner, group, why, notes))
            paths = {Path(volume.path): volume for volume in volumes}
        else:
            paths = {
                stack.enter_context(_loop_over(volume.extents[0])): volume for volume in volumes
            }
        found += _classify(list(paths), platform, skipped, paths)[0]
        checked.append(f"LVM VG {group.name} with {len(volumes)} LVs")
    if names:
        details["lvm"] = names
    return found


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
        options = _rw_options(candidate.fstype, None)
        if home.subvolume:
            options += f",{home.subvolume}"
        _mount(candidate.path, target, candidate.fstype, options)
        stack.callback(_unmount, target)
        _verify_rw(target)
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
        nodes = _disk_nodes(disk_path, work / "nodes", notes)
        skipped: List[str] = []
        details: Dict[str, object] = {}
        groups: List[str] = []
        volumes, pvs = _classify(nodes, platform, skipped)
        if pvs:
            volumes += _lvm_volumes(stack, pvs, platform, skipped, groups, details, notes)
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
        _mount(root.path, mountpoint, root.fstype, _rw_options(root.fstype, found.subvolume))
        stack.callback(_unmount, mountpoint)
        _verify_rw(mountpoint)
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
