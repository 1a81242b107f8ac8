"""Finding the volume's disk: NVMe serials, by-id links, the helper's root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rescue import RescueError
from rescue.disk.devices import (
    find_volume_device,
    helper_root_disks,
    nvme_by_serial,
    validate_volume_id,
)

VOL = "vol-0abc123def4567890"


def fake_sys(tmp_path: Path) -> Path:
    sys_root = tmp_path / "sys"
    for name, serial in (
        ("nvme0n1", "vol0aaaaaaaaaaaaaaaa"),
        ("nvme1n1", "vol0abc123def4567890  "),
    ):
        device = sys_root / "block" / name / "device"
        device.mkdir(parents=True, exist_ok=True)
        (device / "serial").write_text(serial + "\n")
    return sys_root


def test_nvme_serial_without_dash(tmp_path: Path) -> None:
    assert nvme_by_serial(VOL, fake_sys(tmp_path), tmp_path / "dev") == tmp_path / "dev" / "nvme1n1"
    assert nvme_by_serial("vol-0fffffffffffffff0", fake_sys(tmp_path), tmp_path / "dev") is None


def test_nvme_by_id_link_wins(tmp_path: Path) -> None:
    by_id = tmp_path / "dev" / "disk" / "by-id"
    by_id.mkdir(parents=True)
    (tmp_path / "dev" / "nvme3n1").write_text("")
    (by_id / "nvme-Amazon_Elastic_Block_Store_vol0abc123def4567890").symlink_to("../../nvme3n1")
    assert nvme_by_serial(VOL, tmp_path / "none", tmp_path / "dev") == tmp_path / "dev" / "nvme3n1"


@pytest.mark.parametrize(
    "bad", ["vol-123", "vol-0ABC123DEF4567890", "i-0123456789abcdef0", "vol-0123456789abcdef0x"]
)
def test_volume_id_shape(bad: str) -> None:
    with pytest.raises(RescueError, match="not a volume ID"):
        validate_volume_id(bad)


def test_bounded_wait_names_the_volume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESCUE_DEVICE_TIMEOUT", "0.3")
    monkeypatch.setenv("RESCUE_DEVICE_MAP", f"{VOL}={tmp_path / 'never'}")
    with pytest.raises(RescueError, match=f"no block device for {VOL} appeared within 0.3 s"):
        find_volume_device(VOL)


def test_helper_root_disk_is_found_from_mountinfo(tmp_path: Path) -> None:
    root_dev = Path("/").stat().st_dev
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        f"22 1 {os.major(root_dev)}:{os.minor(root_dev)} / / rw - ext4 /dev/x rw\n"
    )
    if not Path(f"/sys/dev/block/{os.major(root_dev)}:{os.minor(root_dev)}").exists():
        pytest.skip("/ is not on a block device here (overlay or tmpfs root)")
    disks = helper_root_disks(str(mountinfo))
    assert disks and all((Path("/sys/block") / disk).exists() for disk in disks)
