"""The execution's name as every resource name accepts it.

Step Functions allows in an execution name what SSM parameter names (only a-zA-Z0-9_.-) and
security group names refuse: `+ = @ ( ) ! '` and any non-ASCII letter. Each handler sees the
execution under this form, so the pending key parameter, the security group and the tags all
use one name, and cleanup finds by tag what the other phases created.
"""

from __future__ import annotations

import hashlib
import re

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")


def resource_name(execution: str) -> str:
    """A safe name stays as it is; any other gets its unsafe characters replaced and a digest of
    the original, so two names that differ only there stay two names."""
    if SAFE_NAME.fullmatch(execution):
        return execution
    digest = hashlib.sha256(execution.encode()).hexdigest()[:10]
    return f"{UNSAFE_CHARACTER.sub('-', execution)[:69]}-{digest}"
