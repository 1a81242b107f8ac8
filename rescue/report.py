"""The agent's one JSON line: what it did, or why it did nothing."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional


def chain_messages(exc: BaseException) -> List[str]:
    """Messages of an error and of the errors it interrupted, oldest first.

    A failed unmount during cleanup must not hide the failure that led to it. An error
    raised `from` another already explains it, so the walk stops there.
    """
    messages: List[str] = []
    current: Optional[BaseException] = exc
    while current is not None:
        messages.insert(0, str(current) or type(current).__name__)
        if current.__cause__ is not None or current.__suppress_context__:
            break
        current = current.__context__
    return messages


def emit_success(fields: Dict[str, Any]) -> None:
    print(json.dumps({"ok": True, **fields}, sort_keys=False), flush=True)


def emit_failure(message: str) -> None:
    line = json.dumps({"ok": False, "error": message})
    print(line, flush=True)
    print(line, file=sys.stderr, flush=True)
