"""Fixtures for the agent on real filesystems: root, loop devices, and a guard that
nothing (loop device, mount) outlives the test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import REPO, VOLUME_ID, AgentResult, AgentRun, require_root


def _ours(line: str, base: Path) -> bool:
    """A path under this session's base temp dir: pytest-15/ must not match pytest-150/...,
    or a session ending would detach and unmount what a concurrent one still uses."""
    return f"{base}/" in line


@pytest.fixture(scope="session")
def agent_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR for the agent: its private mount points land where the guard looks."""
    return tmp_path_factory.mktemp("agent-tmp")


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Loop devices and mounts of this session (its temp dir) are all gone at the end.

    Other xdist workers attach and mount in parallel, so only this session's own
    (files and mount points under its base temp dir) are compared.
    """
    base = tmp_path_factory.getbasetemp()

    def snapshot() -> tuple[list[str], list[str]]:
        loops = subprocess.run(
            ["losetup", "-a"], capture_output=True, text=True, check=False
        ).stdout
        mounts = Path("/proc/mounts").read_text()
        return (
            [line for line in loops.splitlines() if _ours(line, base)],
            [line for line in mounts.splitlines() if _ours(line, base)],
        )

    before = snapshot()
    yield
    after = snapshot()
    if after != before:
        for line in after[1]:
            subprocess.run(["umount", "-l", line.split()[1]], check=False)
        for line in after[0]:
            subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
    assert after == before, f"left behind: loops {after[0]}, mounts {after[1]}"


@pytest.fixture(autouse=True)
def agent_tempdir_in_process(agent_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that call the mount code in-process put its mount points where the guard looks."""
    monkeypatch.setattr(tempfile, "tempdir", str(agent_tmp))


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[Disks]:
    require_root()
    made = Disks(tmp_path)
    try:
        yield made
    finally:
        made.release()


@pytest.fixture
def run_agent(agent_tmp: Path) -> AgentRun:
    """Run `python -m rescue` as the helper would; return (exit code, parsed JSON line)."""

    def run(
        *args: str,
        device: str | None = None,
        timeout: str = "1",
        python: str = sys.executable,
        entry: list[str] | None = None,
        user: int | None = None,
    ) -> AgentResult:
        env = {**os.environ, "TMPDIR": str(agent_tmp), "RESCUE_DEVICE_TIMEOUT": timeout}
        env.pop("RESCUE_DEVICE_MAP", None)
        if device is not None:
            env["RESCUE_DEVICE_MAP"] = f"{VOLUME_ID}={device}"
        command = [python, *(entry or ["-m", "rescue"]), *args]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        lines = done.stdout.splitlines()
        assert len(lines) == 1, (
            f"expected one JSON line, got stdout={done.stdout!r} stderr={done.stderr!r}"
        )
        return done.returncode, json.loads(lines[0])

    return run
