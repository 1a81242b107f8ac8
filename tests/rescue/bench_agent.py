"""Benchmark (not a test): the agent's wall time per filesystem case, start to unmounted.

    sudo .venv/bin/python -m tests.rescue.bench_agent [--runs 7]

Each case gets one real image on a loop device; every run injects a fresh key, so each
run does the full work (find, probe, mount, append, sync, unmount). The process exits only
after its unmount, so the subprocess wall time is start-to-unmounted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import REPO, VOLUME_ID
from tests.support.rescue_trees import new_key, write_linux_tree

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_EFI = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_BIOS = "21686148-6449-6E6F-744E-656564454649"


def ext4_whole(disks: Disks, tree: Path) -> str:
    device = disks.attach(disks.image("ext4", "64M"))
    disks.mkfs("ext4", device, "-d", str(tree))
    return device


def xfs_gpt(disks: Disks, tree: Path) -> str:
    table = f"label: gpt\nsize=1MiB, type={GPT_BIOS}\ntype={GPT_LINUX}\n"
    device = disks.attach(disks.image("xfs", "322M", table))
    root = disks.partition(device, 2)
    disks.mkfs("xfs", root, "-m", f"uuid={uuid.uuid4()}")
    disks.fill(root, "xfs", tree)
    return device


def btrfs_subvolume(disks: Disks, tree: Path) -> str:
    device = disks.attach(disks.image("btrfs", "200M"))
    disks.mkfs("btrfs", device)
    disks.fill(device, "btrfs", tree, subvolume="@")
    return device


def mbr_swap_root(disks: Disks, tree: Path) -> str:
    device = disks.attach(disks.image("mbr", "64M", "label: dos\nsize=8MiB, type=82\ntype=83\n"))
    disks.mkfs("swap", disks.partition(device, 1))
    disks.mkfs("ext4", disks.partition(device, 2), "-d", str(tree))
    return device


def efi_boot_root(disks: Disks, tree: Path) -> str:
    table = (
        f"label: gpt\nsize=33MiB, type={GPT_EFI}\nsize=24MiB, type={GPT_LINUX}\ntype={GPT_LINUX}\n"
    )
    device = disks.attach(disks.image("efi", "72M", table))
    disks.mkfs("vfat", disks.partition(device, 1))
    disks.mkfs("ext4", disks.partition(device, 2))
    disks.mkfs("ext4", disks.partition(device, 3), "-d", str(tree))
    return device


CASES: dict[str, Callable[[Disks, Path], str]] = {
    "ext4 whole disk": ext4_whole,
    "XFS on GPT (BIOS boot + root)": xfs_gpt,
    "btrfs, root in subvolume @": btrfs_subvolume,
    "MBR swap + ext4 root": mbr_swap_root,
    "GPT EFI + /boot + ext4 root": efi_boot_root,
}


def run_once(device: str, public_key: str) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "RESCUE_DEVICE_MAP": f"{VOLUME_ID}={device}"}
    command = [sys.executable, "-m", "rescue", "--platform", "linux", "--volume-id", VOLUME_ID]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "--public-key", public_key],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    result = json.loads(done.stdout)
    if not result["ok"]:
        raise SystemExit(f"agent failed: {result['error']}")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    if os.geteuid() != 0:
        raise SystemExit("needs root (loop devices and mounts)")
    print(
        f"{'case':32} {'median s':>9} {'min s':>7} {'agent s':>8} "
        f"{'files 1st':>9} {'files later':>11}"
    )
    with tempfile.TemporaryDirectory(prefix="rescue-bench-") as scratch:
        for name, build in CASES.items():
            workdir = Path(scratch) / name.split()[0]
            workdir.mkdir()
            disks = Disks(workdir)
            try:
                device = build(disks, write_linux_tree(workdir / "tree"))
                walls, agent_times, changed = [], [], []
                for index in range(runs):
                    public_key = new_key(workdir, f"key{index}")[1]
                    wall, result = run_once(device, public_key)
                    walls.append(wall)
                    agent_times.append(float(str(result["seconds"])))
                    changed.append(result["changed_files"])
            finally:
                disks.release()
            print(
                f"{name:32} {statistics.median(walls):9.3f} {min(walls):7.3f} "
                f"{statistics.median(agent_times):8.3f} {changed[0]!s:>9} {changed[-1]!s:>11}"
            )


if __name__ == "__main__":
    main()
