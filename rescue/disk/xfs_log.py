"""Whether an XFS log holds changes not yet written in place, read without writing.

Such a filesystem may show stale contents (no root at all) until its log is replayed, so
the root probe asks this before it replays a log; a state it cannot read counts as dirty.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

from .. import RescueError

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
