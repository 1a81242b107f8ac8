"""LVM on the target volume: read its logical volumes without changing the volume group.

Decide first, change last: linear LVs through loop devices, others activated in place, every
command scoped to the target's PVs with no metadata copies. Design: docs/rescue-disks.md (LVM).
"""

from __future__ import annotations

import json
from contextlib import contextmanager, suppress
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .. import RescueError

Runner = Callable[[Sequence[str]], str]  # runs an lvm command, returns its stdout
NO_COPIES = "backup { backup = 0 archive = 0 }"  # the helper keeps no copy of the VG
KINDS = {  # lv_attr's first letter (volume type), lvs(8)
    "o": "origin of a snapshot",
    "O": "origin of a merging snapshot",
    "s": "snapshot",
    "S": "merging snapshot",
    "e": "external origin of thin snapshots",
    "V": "thin volume",
    "t": "thin pool",
    "m": "mirror",
    "M": "mirror",
    "r": "raid",
    "R": "raid",
    "C": "cache",
    "v": "virtual",
    "p": "pvmove",
}


class VolumeGroup(NamedTuple):
    name: str
    uuid: str
    pvs: List[str]


class Extent(NamedTuple):
    pv: str
    offset: int  # bytes from the start of the PV
    size: int  # bytes


class LogicalVolume(NamedTuple):
    vg: str
    name: str
    path: str  # /dev/vg/lv
    active: bool
    segtype: str
    extents: List[Extent]  # one per segment; a loop can map only a single linear one
    attr: str = ""  # lv_attr: its first letter is "-" for a plain volume

    @property
    def plain(self) -> bool:
        """Neither a snapshot, an origin of one, a thin volume nor a mirror/raid part: its
        extents are its data. `lvs --segments` shows a thick snapshot's origin and COW
        store as linear too, and writing the origin past device-mapper skips copy-on-write."""
        return self.attr[:1] == "-"

    @property
    def linear(self) -> bool:
        return self.plain and self.segtype == "linear" and len(self.extents) == 1

    @property
    def role(self) -> str:
        """What lv_attr says the volume is, for messages ('' for a plain volume)."""
        kind = self.attr[:1]
        return KINDS.get(kind, f"lv_attr {self.attr or 'unknown'}") if kind != "-" else ""

    @property
    def names(self) -> Tuple[str, ...]:
        """How fstab may name it: /dev/vg/lv and /dev/mapper/vg-lv (dashes doubled)."""
        mapper = f"{self.vg.replace('-', '--')}-{self.name.replace('-', '--')}"
        return (self.path, f"/dev/mapper/{mapper}")


def _command(verb: str, *args: str) -> List[str]:
    return ["lvm", verb, "--config", NO_COPIES, *args]


def _rows(run: Runner, verb: str, args: Sequence[str], table: str) -> List[Dict[str, str]]:
    output = run(_command(verb, *args, "--reportformat", "json"))
    try:
        return list(json.loads(output)["report"][0][table])
    except (ValueError, KeyError, IndexError) as exc:
        raise RescueError(f"lvm {verb} printed no readable report") from exc


def _devices(pvs: Sequence[str]) -> List[str]:
    return [arg for pv in pvs for arg in ("--devices", pv)]


def target_groups(run: Runner, pvs: Sequence[str]) -> List[VolumeGroup]:
    rows = _rows(run, "pvs", ["-o", "pv_name,vg_name,vg_uuid", *_devices(pvs)], "pv")
    groups: Dict[str, VolumeGroup] = {}
    for row in rows:
        if row["vg_name"]:
            group = groups.setdefault(
                row["vg_uuid"], VolumeGroup(row["vg_name"], row["vg_uuid"], [])
            )
            group.pvs.append(row["pv_name"])
    return list(groups.values())


def clashes(run: Runner, group: VolumeGroup) -> bool:
    """Whether a helper VG (one on PVs outside the target) has this name or UUID."""
    rows = _rows(run, "pvs", ["-o", "pv_name,vg_name,vg_uuid"], "pv")
    return any(
        row["pv_name"] not in group.pvs
        and (row["vg_name"] == group.name or row["vg_uuid"] == group.uuid)
        for row in rows
        if row["vg_name"]
    )


def _extent(pe_ranges: str, pe_start: Dict[str, int], extent_size: int) -> List[Extent]:
    """Extents of a segment from seg_pe_ranges ('/dev/x:0-7', one per stripe)."""
    extents = []
    for item in pe_ranges.split():
        pv, _, span = item.rpartition(":")
        first, _, last = span.partition("-")
        if pv not in pe_start or not first.isdigit() or not last.isdigit():
            continue
        offset = pe_start[pv] + int(first) * extent_size
        extents.append(Extent(pv, offset, (int(last) - int(first) + 1) * extent_size))
    return extents


def logical_volumes(run: Runner, group: VolumeGroup) -> List[LogicalVolume]:
    """The group's visible LVs with where their data lies on the PVs (metadata read only)."""
    devices = _devices(group.pvs)
    units = ["--units", "b", "--nosuffix"]
    pvs = _rows(run, "pvs", ["-o", "pv_name,pe_start", *units, *devices], "pv")
    pe_start = {row["pv_name"]: int(row["pe_start"]) for row in pvs}
    fields = "lv_name,lv_path,lv_active,lv_attr,segtype,seg_pe_ranges,vg_extent_size"
    rows = _rows(run, "lvs", ["--segments", "-o", fields, *units, *devices, group.name], "seg")
    volumes: Dict[str, LogicalVolume] = {}
    for row in rows:
        if not row["lv_path"]:  # thin pools and hidden sub-LVs hold no filesystem
            continue
        extents = _extent(row["seg_pe_ranges"], pe_start, int(row["vg_extent_size"]))
        known = volumes.get(row["lv_name"])
        segtype = row["segtype"] if known is None or known.segtype == row["segtype"] else "mixed"
        volumes[row["lv_name"]] = LogicalVolume(
            group.name,
            row["lv_name"],
            row["lv_path"],
            row["lv_active"] == "active",
            segtype,
            [*(known.extents if known else []), *extents],
            row.get("lv_attr", ""),
        )
    return list(volumes.values())


def deactivate_if_active(run: Runner, group: VolumeGroup, volumes: List[LogicalVolume]) -> bool:
    """Undo the helper's auto-activation (it writes no metadata); True if it was active."""
    if not any(volume.active for volume in volumes):
        return False
    run(_command("vgchange", "--activate", "n", *_devices(group.pvs), group.name))
    return True


def unreachable(volumes: Sequence[LogicalVolume]) -> str:
    """The LVs the agent cannot reach through a loop over their extents, with why."""
    return ", ".join(
        f"{v.vg}/{v.name} ({v.role or v.segtype + ', ' + str(len(v.extents)) + ' segments'})"
        for v in volumes
        if not v.linear
    )


@contextmanager
def activated(
    run: Runner, group: VolumeGroup, why: str = "", notes: Optional[List[str]] = None
) -> Iterator[List[LogicalVolume]]:
    """Activate the group in place (no metadata written); deactivate on exit.

    why: the LVs that need it (see unreachable); notes: where a failed deactivation is told
    (it must not hide the error that ended the run)."""
    needs = f" ({why})" if why else " (thin, raid, snapshots or multi-segment)"
    if clashes(run, group):
        raise RescueError(
            f"the volume's LVM VG {group.name} has the name or UUID of a VG of the helper and "
            f"holds LVs other than plain linear ones{needs}, which the agent reaches only by "
            "activating them: nothing was changed; use a helper whose AMI has no such VG"
        )
    devices = _devices(group.pvs)
    try:
        run(_command("vgchange", "--activate", "y", *devices, group.name))
    except RescueError as exc:
        with suppress(RescueError):  # a partial activation: undo what it did
            run(_command("vgchange", "--activate", "n", *devices, group.name))
        raise RescueError(
            f"the volume's LVM VG {group.name} holds LVs other than plain linear ones{needs}, "
            "which the agent writes only through device-mapper (a snapshot keeps its "
            "copy-on-write), and activating the VG failed: nothing was written"
        ) from exc
    try:
        yield logical_volumes(run, group)
    finally:
        try:
            run(_command("vgchange", "--activate", "n", *devices, group.name))
        except RescueError as exc:
            if notes is not None:
                notes.append(f"could not deactivate LVM VG {group.name} on the helper: {exc}")
