"""Reading an XFS log's state: a state that cannot be read never counts as clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescue.disk import xfs_log

HEADER = "xfs_logprint:\n    data device: 0x700\n    log device: 0x700 daddr: 327728\n\n"


def fake_logprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *runs: str) -> Path:
    """An xfs_logprint whose nth run runs the nth shell snippet (the last one repeats)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    count = tmp_path / "count"
    count.write_text("0")
    cases = "".join(f"  {n}) {body} ;;\n" for n, body in enumerate(runs[:-1]))
    script = bin_dir / "xfs_logprint"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{count}"); echo $((n + 1)) > "{count}"\n'
        f'case "$n" in\n{cases}  *) {runs[-1]} ;;\nesac\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(xfs_log, "XFS_LOG_RETRY_DELAY", 0.01)
    return count


def state_line(state: str) -> str:
    return f"printf '{HEADER}    log tail: 2 head: 8 state: <{state}>\\n'"


@pytest.mark.parametrize(("state", "dirty"), [("DIRTY", True), ("CLEAN", False)])
def test_the_state_is_read_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, dirty: bool
) -> None:
    fake_logprint(tmp_path, monkeypatch, state_line(state))
    assert xfs_log.xfs_log_state(Path("/dev/loop9")) == xfs_log.LogState(dirty)


def test_a_failed_read_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    count = fake_logprint(
        tmp_path, monkeypatch, "echo 'read failed: Device busy' >&2; exit 1", state_line("CLEAN")
    )
    assert xfs_log.xfs_log_state(Path("/dev/loop9")) == xfs_log.LogState(False)
    assert count.read_text().strip() == "2"


@pytest.mark.parametrize(
    ("run", "why"),
    [
        (
            "printf 'xfs_logprint:\\n'; echo 'xfs_logprint: read failed: Input/output error' >&2;"
            " exit 1",
            "xfs_logprint -t /dev/loop9 failed (exit status 1): xfs_logprint: read failed: "
            "Input/output error",
        ),
        ("exit 0", "xfs_logprint -t /dev/loop9 printed no log state in its first lines: no"),
        ("yes 'garbage'", "printed no log state in its first lines"),
    ],
)
def test_a_state_that_cannot_be_read_counts_as_possibly_dirty_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: str, why: str
) -> None:
    count = fake_logprint(tmp_path, monkeypatch, run)
    state = xfs_log.xfs_log_state(Path("/dev/loop9"))
    assert state.dirty and why in state.unread, state
    assert count.read_text().strip() == str(xfs_log.XFS_LOG_TRIES)
