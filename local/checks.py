"""Questions a user asks of the world after a run, answered from a report."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization

from lambdas.names import key_parameter


def public_key_of(private_key_text: str) -> str:
    """`ssh-<type> <base64>` of an OpenSSH private key, as `ssh-keygen -y` would print it."""
    key = serialization.load_ssh_private_key(private_key_text.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def fingerprint(public_key_line: str) -> str:
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def key_logs_in(report: dict[str, Any], instance: str, instance_id: str) -> list[str]:
    """The users whose authorized_keys hold the public half of the stored private key."""
    parameter = report["world"]["parameters"].get(key_parameter(instance_id))
    if not parameter:
        return []
    public = public_key_of(parameter["value"])
    users = report["world"]["authorized_keys"].get(instance, {})
    return [
        user
        for user, lines in users.items()
        if any(line.split()[:2] == public.split()[:2] for line in lines)
    ]
