"""Which fstab entries hold the users' homes, and which device of the volume each names.

fstab(5): the first field is a device, LABEL=, UUID=, PARTUUID= or PARTLABEL= (or a
/dev/disk/by-* link); spaces in paths are written \\040; noauto entries are not mounted
at boot, so the home under their mount point is the root filesystem's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rescue.disk import fstab, root_probe
from rescue.linux.inroot import VolumeRoot

ROOT = fstab.Device("/dev/nvme1n1p1", "xfs", "11-aa", "/", "p-1", "root", 1, ())
HOME = fstab.Device("/dev/nvme1n1p2", "ext4", "22-BB", "home", "p-2", "userdata", 2, ())
LV_HOME = fstab.Device(
    "/dev/loop7", "xfs", "33-cc", "", "", "", 0, ("/dev/rhel/home", "/dev/mapper/rhel-home")
)
DEVICES = [ROOT, HOME, LV_HOME]
HOMES = ["/home/ec2-user", "/root"]


@pytest.mark.parametrize(
    ("spec", "device"),
    [
        ("UUID=22-bb", HOME),  # blkid prints lower case; some fstabs upper
        ('LABEL="home"', HOME),
        ("PARTUUID=P-2", HOME),
        ("PARTLABEL=userdata", HOME),
        ("/dev/disk/by-uuid/22-bb", HOME),
        ("/dev/disk/by-label/home", HOME),
        ("/dev/mapper/rhel-home", LV_HOME),
        ("/dev/rhel/home", LV_HOME),
        ("UUID=99-zz", None),
        ("LABEL=other", None),
    ],
)
def test_fstab_names_a_device_of_the_volume(spec: str, device: fstab.Device | None) -> None:
    assert fstab.find_device(spec, DEVICES, "UUID=11-aa") == device


@pytest.mark.parametrize(
    ("root", "spec", "device"),
    [
        ("/dev/xvda1", "/dev/xvda2", HOME),
        ("/dev/sda1", "/dev/xvda2", HOME),  # Xen's sda and xvda are one disk
        ("/dev/nvme0n1p1", "/dev/nvme0n1p2", HOME),
        ("/dev/xvda1", "/dev/xvdb1", None),  # another disk of the instance
        ("UUID=11-aa", "/dev/xvda2", None),  # nothing says which disk xvda is
    ],
)
def test_device_names_count_only_on_the_roots_own_disk(
    root: str, spec: str, device: fstab.Device | None
) -> None:
    assert fstab.find_device(spec, DEVICES, root) == device


def test_parse_unescapes_paths_and_skips_comments() -> None:
    text = "# comment\n\nUUID=1 /srv/my\\040home ext4 defaults 0 2\nLABEL=x /data xfs\n"
    assert fstab.parse(text) == [
        fstab.Entry("UUID=1", "/srv/my home", "ext4", ["defaults"]),
        fstab.Entry("LABEL=x", "/data", "xfs", ["defaults"]),
    ]


def test_only_entries_at_or_above_a_home_are_mounted_shallowest_first() -> None:
    entries = fstab.parse(
        "UUID=11-aa / xfs defaults 0 0\n"
        "UUID=22-bb /home/ec2-user ext4 defaults 0 0\n"
        "UUID=22-bb /home/ ext4 defaults 0 0\n"
        "UUID=22-bb /homework ext4 defaults 0 0\n"
        "UUID=22-bb /var ext4 defaults 0 0\n"
        "UUID=22-bb /home2 ext4 noauto 0 0\n"
        "/swapfile none swap sw 0 0\n"
    )
    assert [e.mountpoint for e in fstab.home_entries(entries, HOMES)] == [
        "/home",
        "/home/ec2-user",
    ]


@pytest.mark.parametrize("options", ["bind", "rbind,ro", "defaults,bind"])
def test_a_bind_mounted_home_is_named_unavailable(options: str) -> None:
    """A key written into the root's /home would be hidden at boot by the bind mount."""
    entries = fstab.parse(
        f"LABEL=data /data xfs defaults 0 0\n/data/home /home none {options} 0 0\n"
    )
    mounts, unavailable = fstab.plan(entries, HOMES, DEVICES)
    assert mounts == [] and list(unavailable) == ["/home"]
    assert unavailable["/home"].startswith("fstab bind-mounts /data/home at /home at boot")


def test_noauto_home_stays_on_the_root() -> None:
    entries = fstab.parse("UUID=22-bb /home ext4 noauto 0 0\n")
    assert fstab.plan(entries, HOMES, DEVICES) == ([], {})


def test_plan_mounts_local_homes_and_names_the_others() -> None:
    entries = fstab.parse(
        "UUID=11-aa / btrfs subvol=root 0 0\n"
        "UUID=11-aa /home btrfs subvol=home,compress=zstd:1 0 0\n"
        "fs-1.efs.amazonaws.com:/ /home/ec2-user nfs4 defaults 0 0\n"
        "UUID=99-zz /root xfs defaults 0 0\n"
    )
    mounts, unavailable = fstab.plan(entries, HOMES, DEVICES)
    assert [(m.entry.mountpoint, m.device, m.subvolume) for m in mounts] == [
        ("/home", ROOT, "subvol=home")
    ]
    assert set(unavailable) == {"/home/ec2-user", "/root"}
    assert "network filesystem" in unavailable["/home/ec2-user"]
    assert "UUID=99-zz" in unavailable["/root"] and "not on this volume" in unavailable["/root"]


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def other_mounts(root: Path, homes: list[str]) -> dict[str, str]:
    with VolumeRoot(root) as volume:
        return root_probe.other_home_mounts(volume, homes)


MOUNT_UNIT = "[Unit]\nDescription=homes\n[Mount]\nWhat=fs-1:/\nWhere={where}\nType=nfs4\n"


@pytest.mark.parametrize(
    "unit_dir", ["etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"]
)
@pytest.mark.parametrize("kind", ["mount", "automount"])
def test_a_systemd_unit_that_mounts_a_home_names_it_unavailable(
    tmp_path: Path, unit_dir: str, kind: str
) -> None:
    root = tree(
        tmp_path,
        {
            f"{unit_dir}/home.{kind}": MOUNT_UNIT.format(where="/home"),
            f"{unit_dir}/srv-data.{kind}": MOUNT_UNIT.format(where="/srv/data"),  # no home
            f"{unit_dir}/-.mount": MOUNT_UNIT.format(where="/"),
        },
    )
    found = other_mounts(root, HOMES)
    assert list(found) == ["/home"]
    assert f"/{unit_dir}/home.{kind}" in found["/home"] and "mounts /home" in found["/home"]


def test_a_masked_mount_unit_mounts_nothing(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/systemd/system/home.mount").symlink_to("/dev/null")
    assert other_mounts(tmp_path, HOMES) == {}


def test_autofs_maps_over_a_homes_parent_name_it_unavailable(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "etc/auto.master": "# homes\n/home /etc/auto.home --timeout=60\n+auto.master\n"
            "/misc /etc/auto.misc\n/- /etc/auto.direct\n",
            "etc/auto.direct": "/srv/users -rw nfs:/users\n",
            "etc/auto.master.d/root.autofs": "/root /etc/auto.root\n",
        },
    )
    found = other_mounts(root, ["/home/ec2-user", "/srv/users/alice", "/root", "/opt/bob"])
    assert sorted(found) == ["/home", "/root", "/srv/users"]
    assert "autofs (/etc/auto.master) mounts /home from the map /etc/auto.home" in found["/home"]
    assert "/etc/auto.direct" in found["/srv/users"]


def test_units_and_autofs_without_homes_change_nothing() -> None:
    assert (
        fstab.other_mounts({"/x.mount": "[Mount]\nWhere=/var\n"}, {}, lambda _: None, HOMES) == {}
    )
