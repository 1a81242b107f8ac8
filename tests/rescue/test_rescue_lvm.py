"""LVM decisions without device-mapper: what the agent reads, and the few commands it runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rescue import RescueError
from rescue.disk import lvm, partitions

TARGET = "/dev/nvme1n1p2"
MIB = 1024 * 1024


class FakeLvm:
    """Answers lvm report commands from tables of PVs and LV segments; records commands."""

    def __init__(self, pvs: list[dict[str, str]], segments: list[dict[str, str]]) -> None:
        self.pvs = pvs
        self.segments = segments
        self.commands: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        command = list(args)
        self.commands.append(command)
        verb = command[1]
        scoped = [command[i + 1] for i, arg in enumerate(command) if arg == "--devices"]
        if verb == "pvs":
            rows = [row for row in self.pvs if not scoped or row["pv_name"] in scoped]
            return json.dumps({"report": [{"pv": rows}]})
        if verb == "lvs":
            return json.dumps({"report": [{"seg": self.segments}]})
        return ""

    def changes(self) -> list[list[str]]:
        """Commands other than reports, without the lvm binary and --config."""
        return [
            [arg for arg in c[1:] if arg not in ("--config", lvm.NO_COPIES)]
            for c in self.commands
            if c[1] not in ("pvs", "lvs")
        ]


def pv(name: str, vg: str, vg_uuid: str) -> dict[str, str]:
    return {"pv_name": name, "vg_name": vg, "vg_uuid": vg_uuid, "pe_start": str(MIB)}


def seg(
    lv: str, ranges: str, segtype: str = "linear", active: str = "", attr: str = ""
) -> dict[str, str]:
    return {
        "lv_name": lv,
        "lv_attr": attr or ("V" if segtype == "thin" else "-") + "wi-------",
        "lv_path": f"/dev/rhel/{lv}" if not lv.startswith("[") else "",
        "lv_active": active,
        "segtype": segtype,
        "seg_pe_ranges": ranges,
        "vg_extent_size": str(4 * MIB),
    }


def group_of(fake: FakeLvm) -> lvm.VolumeGroup:
    [group] = lvm.target_groups(fake, [TARGET])
    return group


def test_linear_volumes_are_located_on_the_pv_from_metadata_alone() -> None:
    fake = FakeLvm(
        [pv(TARGET, "rhel", "U1")],
        [seg("root", f"{TARGET}:0-1279"), seg("home", f"{TARGET}:1280-1535")],
    )
    volumes = lvm.logical_volumes(fake, group_of(fake))
    assert [(v.name, v.linear, v.extents) for v in volumes] == [
        ("root", True, [lvm.Extent(TARGET, MIB, 1280 * 4 * MIB)]),
        ("home", True, [lvm.Extent(TARGET, MIB + 1280 * 4 * MIB, 256 * 4 * MIB)]),
    ]
    assert fake.changes() == []  # reading the layout writes nothing


def test_fstab_names_of_a_volume_double_the_dashes() -> None:
    volume = lvm.LogicalVolume("my-vg", "lv-home", "/dev/my-vg/lv-home", False, "linear", [])
    assert volume.names == ("/dev/my-vg/lv-home", "/dev/mapper/my--vg-lv--home")


def test_multi_segment_and_thin_volumes_are_not_linear() -> None:
    fake = FakeLvm(
        [pv(TARGET, "rhel", "U1")],
        [
            seg("root", f"{TARGET}:0-9"),
            seg("root", f"{TARGET}:20-29"),
            seg("[pool_tdata]", f"{TARGET}:30-39"),
            seg("data", "", segtype="thin"),
        ],
    )
    volumes = {v.name: v for v in lvm.logical_volumes(fake, group_of(fake))}
    assert set(volumes) == {"root", "data"}  # hidden sub-LVs hold no filesystem
    assert not volumes["root"].linear and len(volumes["root"].extents) == 2
    assert not volumes["data"].linear


@pytest.mark.parametrize(
    ("attr", "role"),
    [
        ("owi-a-s---", "origin of a snapshot"),
        ("Owi-a-s---", "origin of a merging snapshot"),
        ("swi-a-s---", "snapshot"),
        ("ewi-a-----", "external origin of thin snapshots"),
    ],
)
def test_snapshots_and_their_origins_are_not_linear_though_their_segments_are(
    attr: str, role: str
) -> None:
    """lvs --segments shows a thick snapshot's origin and COW store as linear: a loop over
    the origin's extents would skip copy-on-write and corrupt the snapshot."""
    fake = FakeLvm([pv(TARGET, "rhel", "U1")], [seg("root", f"{TARGET}:0-9", attr=attr)])
    [volume] = lvm.logical_volumes(fake, group_of(fake))
    assert volume.segtype == "linear" and not volume.linear
    assert lvm.unreachable([volume]) == f"rhel/root ({role})"
    assert "lv_attr" in " ".join(fake.commands[-1])


def test_a_failed_deactivation_does_not_hide_the_error_and_is_noted() -> None:
    class Failing(FakeLvm):
        def __call__(self, args: Sequence[str]) -> str:
            if "n" in args and "vgchange" in args:
                raise RescueError("vgchange -an failed")
            return super().__call__(args)

    fake = Failing([pv(TARGET, "rhel", "U1")], [])
    notes: list[str] = []
    with (
        pytest.raises(RescueError, match="mount failed"),
        lvm.activated(fake, group_of(fake), notes=notes),
    ):
        raise RescueError("mount failed")
    assert notes == ["could not deactivate LVM VG rhel on the helper: vgchange -an failed"]


def test_auto_activated_group_is_deactivated_first() -> None:
    """Ubuntu's lvm2 udev rules activate a VG when its volume attaches: handled, not refused."""
    fake = FakeLvm([pv(TARGET, "rhel", "U1")], [seg("root", f"{TARGET}:0-9", active="active")])
    group = group_of(fake)
    assert lvm.deactivate_if_active(fake, group, lvm.logical_volumes(fake, group))
    assert fake.changes() == [["vgchange", "--activate", "n", "--devices", TARGET, "rhel"]]
    idle = FakeLvm([pv(TARGET, "rhel", "U1")], [seg("root", f"{TARGET}:0-9")])
    assert not lvm.deactivate_if_active(idle, group, lvm.logical_volumes(idle, group))
    assert idle.changes() == []


@pytest.mark.parametrize("helper", [("rhel", "OTHER"), ("other", "U1")], ids=["name", "uuid"])
def test_non_linear_group_beside_a_clashing_helper_vg_is_refused_unchanged(
    helper: tuple[str, str],
) -> None:
    fake = FakeLvm([pv(TARGET, "rhel", "U1"), pv("/dev/nvme0n1p3", *helper)], [])
    with (
        pytest.raises(RescueError, match="nothing was changed"),
        lvm.activated(fake, group_of(fake)),
    ):
        pass
    assert fake.changes() == []


def test_non_linear_group_is_activated_in_place_and_deactivated_on_failure() -> None:
    fake = FakeLvm([pv(TARGET, "rhel", "U1"), pv("/dev/nvme0n1p3", "ubuntu", "U2")], [])
    with pytest.raises(RescueError, match="mount failed"), lvm.activated(fake, group_of(fake)):
        raise RescueError("mount failed")
    assert fake.changes() == [
        ["vgchange", "--activate", "y", "--devices", TARGET, "rhel"],
        ["vgchange", "--activate", "n", "--devices", TARGET, "rhel"],
    ]


def test_every_command_keeps_the_helper_free_of_metadata_copies() -> None:
    fake = FakeLvm([pv(TARGET, "rhel", "U1")], [seg("root", f"{TARGET}:0-9", active="active")])
    group = group_of(fake)
    lvm.deactivate_if_active(fake, group, lvm.logical_volumes(fake, group))
    with lvm.activated(fake, group):
        pass
    assert all(c[2:4] == ["--config", lvm.NO_COPIES] for c in fake.commands)
    assert not {"vgimportclone", "vgrename", "vgcfgrestore"} & {c[1] for c in fake.commands}


def test_unreadable_report_is_a_clear_error() -> None:
    with pytest.raises(RescueError, match="no readable report"):
        lvm.target_groups(lambda args: "not json", [TARGET])


def fake_holder(sys_block: Path, name: str, uuid: str, holders: Sequence[str] = ()) -> None:
    node = sys_block / name
    (node / "dm").mkdir(parents=True)
    (node / "dm" / "uuid").write_text(uuid + "\n")
    (node / "dev").write_text("252:0\n")
    (node / "holders").mkdir()
    for holder in holders:
        (node / "holders" / holder).touch()


def test_only_idle_logical_volumes_may_hold_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auto-activated LV holds the PV: accepted. Anything else holding it (a mounted LV,
    a crypt or stacked device) is still refused as the disk being in use."""
    monkeypatch.setattr(partitions, "sys_block", lambda name: tmp_path / name)
    fake_holder(tmp_path, "dm-0", "LVM-abcdef")
    fake_holder(tmp_path, "dm-1", "CRYPT-LUKS2-abc")
    fake_holder(tmp_path, "dm-2", "LVM-abcdef", holders=["dm-3"])
    assert partitions.idle_lv("dm-0", {})
    assert not partitions.idle_lv("dm-0", {"252:0": "/mnt"})
    assert not partitions.idle_lv("dm-1", {})
    assert not partitions.idle_lv("dm-2", {})
    assert not partitions.idle_lv("dm-9", {})
