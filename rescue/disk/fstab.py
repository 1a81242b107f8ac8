"""Which filesystems of the volume's /etc/fstab hold the users' homes, and where they are.

sshd reads a user's keys after the instance booted, with its fstab mounted: a key written
into /home/<user> on the root filesystem while fstab mounts /home from elsewhere lands in
a directory nobody sees. So the homes are found through the volume's own fstab, on the
same disk (by UUID, LABEL, PARTUUID, PARTLABEL, /dev/disk/by-*, LVM names or device
names), and those that live on another disk are named as unavailable.
"""

from __future__ import annotations

import posixpath
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

NOT_LOCAL = ("nfs", "nfs4", "cifs", "smb3", "sshfs", "fuse.sshfs", "glusterfs", "ceph", "9p")
BY_LINK = {
    "/dev/disk/by-uuid/": "UUID",
    "/dev/disk/by-label/": "LABEL",
    "/dev/disk/by-partuuid/": "PARTUUID",
    "/dev/disk/by-partlabel/": "PARTLABEL",
}
# Names a device may have on the instance: Xen sdX/xvdX, Nitro nvmeXnY, virtio vdX.
DEVICE_NAME_RE = re.compile(r"^/dev/(?:(?:sd|xvd|vd)([a-z]+)|(nvme\d+n\d+)p)(\d+)$")


class Entry(NamedTuple):
    spec: str  # e.g. UUID=..., /dev/mapper/vg-home
    mountpoint: str
    fstype: str
    options: List[str]


class Device(NamedTuple):
    """A filesystem on the attached disk, as fstab could name it."""

    path: str  # node the agent mounts
    fstype: str
    uuid: str
    label: str
    partuuid: str
    partlabel: str
    number: int  # partition number, 0 for the whole disk or an LV
    lv_names: Tuple[str, ...]  # /dev/vg/lv and /dev/mapper/vg-lv, for LVs


class HomeMount(NamedTuple):
    entry: Entry
    device: Device
    subvolume: Optional[str]  # btrfs subvol= or subvolid= option, as written


def _unescape(field: str) -> str:
    """fstab writes spaces and tabs in paths as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse(text: str) -> List[Entry]:
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        options = fields[3].split(",") if len(fields) > 3 else ["defaults"]
        entries.append(Entry(_unescape(fields[0]), _unescape(fields[1]), fields[2], options))
    return entries


def _tag(spec: str) -> Tuple[str, str]:
    """('UUID', value) for UUID=..., LABEL=... and /dev/disk/by-*/ links, else ('', spec)."""
    key, sep, value = spec.partition("=")
    if sep and key.upper() in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        return key.upper(), value.strip("\"'")
    for prefix, tag in BY_LINK.items():
        if spec.startswith(prefix):
            return tag, spec[len(prefix) :]
    return "", spec


def device_disk(spec: str) -> Optional[Tuple[str, int]]:
    """(disk, partition number) of an instance device name such as /dev/xvda2; Xen's sdX
    and xvdX are one disk."""
    match = DEVICE_NAME_RE.match(spec)
    if not match:
        return None
    disk = f"xvd{match.group(1)}" if match.group(1) else str(match.group(2))
    return disk, int(match.group(3))


def find_device(spec: str, devices: Sequence[Device], root_spec: Optional[str]) -> Optional[Device]:
    """The device of this disk that fstab's first field names, None if none does."""
    tag, value = _tag(spec)
    for device in devices:
        if tag == "UUID" and value.lower() == device.uuid.lower():
            return device
        if tag == "LABEL" and value == device.label:
            return device
        if tag == "PARTUUID" and value.lower() == device.partuuid.lower():
            return device
        if tag == "PARTLABEL" and value == device.partlabel:
            return device
        if not tag and spec in device.lv_names:
            return device
    named = device_disk(spec) if not tag else None
    root_disk = device_disk(root_spec or "")
    # A device name is only known to be on this disk when fstab mounts the root from it too.
    if named and root_disk and named[0] == root_disk[0]:
        return next((d for d in devices if d.number == named[1]), None)
    return None


def _under(path: str, mountpoint: str) -> bool:
    mountpoint = mountpoint.rstrip("/") or "/"
    return path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


def _bind(entry: Entry) -> bool:
    return "bind" in entry.options or "rbind" in entry.options


def home_entries(entries: Sequence[Entry], homes: Sequence[str]) -> List[Entry]:
    """Entries mounted at boot at or above some home (not /): shallowest first."""
    found = []
    for entry in entries:
        mountpoint = posixpath.normpath(entry.mountpoint)
        if mountpoint == "/" or not mountpoint.startswith("/") or "noauto" in entry.options:
            continue
        if entry.fstype == "swap" or (entry.fstype == "none" and not _bind(entry)):
            continue
        if any(_under(home, mountpoint) for home in homes):
            found.append(entry._replace(mountpoint=mountpoint))
    return sorted(found, key=lambda e: e.mountpoint.count("/"))


def root_spec(entries: Sequence[Entry]) -> Optional[str]:
    return next((e.spec for e in entries if posixpath.normpath(e.mountpoint) == "/"), None)


def subvolume(entry: Entry) -> Optional[str]:
    for option in entry.options:
        key, sep, _ = option.partition("=")
        if sep and key in ("subvol", "subvolid"):
            return option
    return None


def plan(
    entries: Sequence[Entry], homes: Sequence[str], devices: Sequence[Device]
) -> Tuple[List[HomeMount], Dict[str, str]]:
    """Home filesystems to mount from this disk, and home mount points that are not on it
    (mount point -> why)."""
    mounts: List[HomeMount] = []
    unavailable: Dict[str, str] = {}
    root = root_spec(entries)
    for entry in home_entries(entries, homes):
        if _bind(entry):
            unavailable[entry.mountpoint] = (
                f"fstab bind-mounts {entry.spec} at {entry.mountpoint} at boot, which hides "
                f"what the root holds under {entry.mountpoint}: the agent does not follow bind "
                f"mounts; add that user's key under {entry.spec} on the volume that holds it"
            )
            continue
        if entry.fstype in NOT_LOCAL or entry.fstype.startswith("fuse"):
            unavailable[entry.mountpoint] = (
                f"fstab mounts {entry.mountpoint} from {entry.spec} ({entry.fstype}), a network "
                "filesystem the agent cannot reach"
            )
            continue
        if entry.fstype == "tmpfs":
            unavailable[entry.mountpoint] = f"fstab mounts {entry.mountpoint} as tmpfs"
            continue
        device = find_device(entry.spec, devices, root)
        if device is None:
            unavailable[entry.mountpoint] = (
                f"fstab mounts {entry.mountpoint} from {entry.spec}, which is not on this volume "
                "(another EBS volume?): the agent repairs the root volume only; add that user's "
                "key on the volume that holds it"
            )
            continue
        mounts.append(HomeMount(entry, device, subvolume(entry)))
    return mounts, unavailable


UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
UNIT_GLOBS = tuple(f"{d}/*.{kind}" for d in UNIT_DIRS for kind in ("mount", "automount"))
AUTOFS_MASTERS = ("/etc/auto.master", "/etc/auto.master.d/*.autofs")


def unit_where(text: str) -> Optional[str]:
    """Where= of a [Mount] or [Automount] section of a systemd unit, None if it has none."""
    section = ""
    where = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line
        elif section in ("[Mount]", "[Automount]") and line.startswith("Where"):
            key, sep, value = line.partition("=")
            if sep and key.strip() == "Where":
                where = value.strip() or None
    return where


def autofs_points(master: str, read: Callable[[str], Optional[str]]) -> List[Tuple[str, str]]:
    """(mount point, map) of an auto.master: indirect maps mount under their mount point,
    a direct map (/-) at each absolute key of its map file when the agent can read it."""
    points = []
    for raw in master.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2 or not fields[0].startswith("/"):
            continue  # comments, +auto.master (NIS) includes
        mountpoint, source = fields[0], fields[1]
        if mountpoint != "/-":
            points.append((posixpath.normpath(mountpoint), source))
            continue
        text = read(source) if source.startswith("/") else None
        for line in (text or "").splitlines():
            key = line.split("#", 1)[0].split()
            if key and key[0].startswith("/"):
                points.append((posixpath.normpath(key[0]), source))
    return points


def other_mounts(
    units: Dict[str, str],
    masters: Dict[str, str],
    read: Callable[[str], Optional[str]],
    homes: Sequence[str],
) -> Dict[str, str]:
    """Home mount points that systemd mount units or autofs mount at boot (mount point ->
    why): fstab does not name them, and a key written under them on the root is hidden."""
    found: Dict[str, str] = {}
    for path, text in units.items():
        where = unit_where(text)
        if where and where.startswith("/") and posixpath.normpath(where) != "/":
            where = posixpath.normpath(where)
            if any(_under(home, where) for home in homes):
                found.setdefault(
                    where,
                    f"the systemd unit {path} mounts {where} at boot, which the agent does not "
                    "follow: add that user's key on the filesystem it mounts",
                )
    for path, text in masters.items():
        for where, source in autofs_points(text, read):
            if where != "/" and any(_under(home, where) for home in homes):
                found.setdefault(
                    where,
                    f"autofs ({path}) mounts {where} from the map {source} at login, which the "
                    "agent does not follow: add that user's key where the map points",
                )
    return found
