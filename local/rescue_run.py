"""What running the rescue document checks before the agent, which moto does not run.

SendCommand's DocumentVersion, which moto ignores (it always runs the document's only text).
AWS (SendCommand API reference): DocumentVersion is `$DEFAULT`, `$LATEST` or a version number
(pattern `([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)`), `$DEFAULT` when left out; a version the
document does not have fails the call with InvalidDocumentVersion. The command runs that
version's content. Here the engine holds one agent, the one the stack deployed last (the
document's latest version): a command that resolves to an older version reports that it ran
an older agent and fails, as the workflow must never rely on one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from lambdas.logic.rescue_contract import (
    EXIT_PYTHON_UNSUITABLE,
    MIN_PYTHON,
    PYTHON_UNSUITABLE,
    unsuitable_python_message,
)

VERSION = re.compile(r"([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)")
_sent = threading.local()


def send_command_response(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps moto's SendCommand handler: checks and resolves DocumentVersion for the backend."""
    from moto.ssm.exceptions import InvalidDocumentVersion, ValidationException

    def send(self: Any) -> Any:
        asked = self._get_param("DocumentVersion") or "$DEFAULT"
        if not VERSION.fullmatch(asked):
            raise ValidationException(
                f"1 validation error detected: Value '{asked}' at 'documentVersion' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)"
            )
        documents = self.ssm_backend._documents.get(self._get_param("DocumentName"))
        resolved = None
        if documents is not None:
            resolved = {
                "$DEFAULT": documents.default_version,
                "$LATEST": documents.latest_version,
            }.get(asked, asked)
            if resolved not in documents.versions:
                raise InvalidDocumentVersion("The document version is not valid or does not exist.")
        _sent.version = (resolved, documents.latest_version if documents else None)
        try:
            return original(self)
        finally:
            _sent.version = None

    return send


def stale_version() -> str | None:
    """During SendCommand: why the version it runs is not the latest, or None if it is."""
    resolved, latest = getattr(_sent, "version", None) or (None, None)
    if resolved is None or resolved == latest:
        return None
    return (
        f"this is version {resolved} of the document, an older agent than version {latest}, "
        "the one the stack deployed last"
    )


def python_gate(version: str | None) -> tuple[str, int, str, str] | None:
    """The document's first step on an instance whose python3 is `version` (None: a suitable
    one; "missing": none): the command's status, exit code, stdout and stderr if it stops there (see
    rescue_contract.python_gate_script, run for real in tests/stack)."""
    if version is None:
        return None
    if version != "missing" and tuple(int(p) for p in version.split(".")[:2]) >= MIN_PYTHON:
        return None
    message = unsuitable_python_message(version)
    report = json.dumps({"ok": False, "reason": PYTHON_UNSUITABLE, "error": message})
    return ("Failed", EXIT_PYTHON_UNSUITABLE, report + "\n", message + "\n")
