"""Times the workflow hands on and reports, in ISO 8601 UTC as AWS's APIs print theirs
(2026-11-30T07:41:00.123Z): readable in a result, comparable as text."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def now() -> str:
    return iso(time.time())


def epoch(stamp: str | float) -> float:
    """Seconds since 1970 of a time this module wrote (a number: from a run started before
    times were ISO 8601)."""
    if isinstance(stamp, int | float):
        return float(stamp)
    return datetime.fromisoformat(stamp).timestamp()
