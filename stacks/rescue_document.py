"""The rescue SSM Command document: the `rescue/` agent as a zipapp, run by a short shell script.

The agent travels inside the document (base64), so the helper needs no S3 access, no pip and no
network beyond SSM's; the document's version pins the agent's version.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from rescue.build import build_zipapp
from rescue.keys import KEY_TYPES

# SSM refuses Command documents whose content exceeds 64 KB.
MAX_CONTENT_BYTES = 64 * 1024

PLATFORMS = ("linux", "windows")
TARGET_PATTERN = r"^(vol-[0-9a-f]{8,17}|/)$"
# The name the volume was attached under; a Xen helper shows it as /dev/xvdX (Nitro helpers
# find it by serial and need none).
DEVICE_NAME_PATTERN = r"^(/dev/(sd|xvd)[b-z])?$"
# An OpenSSH public key line (a type the agent accepts, base64 blob, optional comment) or empty
# (Windows). The value lands inside single quotes in the script, so the pattern admits no quote,
# backslash, `$`, backtick or newline: nothing a caller passes can leave the quotes.
PUBLIC_KEY_PATTERN = (
    "^(("
    + "|".join(t.replace(".", r"\.") for t in sorted(KEY_TYPES))
    + r") [A-Za-z0-9+/]{16,16384}={0,3}( [A-Za-z0-9@._+=:,/-][A-Za-z0-9@._+=:,/ -]{0,254})?)?$"
)
ZIPAPP_HEREDOC = "RESCUE_ZIPAPP"
# The helper is a fresh instance: apt may still be busy with its first-boot upgrades.
APT = "apt-get -q -o DPkg::Lock::Timeout=180"


def build_zipapp_bytes() -> bytes:
    """The agent as the zipapp `rescue.build` makes (deterministic: same sources, same bytes)."""
    with tempfile.TemporaryDirectory(prefix="rescue-zipapp-") as tmp:
        return build_zipapp(Path(tmp) / "rescue.pyz").read_bytes()


def shell_script(zipapp: bytes) -> list[str]:
    """The aws:runShellScript lines; SSM fills the {{ }} parameters before bash runs them."""
    encoded = base64.b64encode(zipapp).decode("ascii")
    return [
        "#!/bin/bash",
        "set -euo pipefail",
        "platform='{{ Platform }}'",
        "target='{{ Target }}'",
        "public_key='{{ PublicKey }}'",
        "device_name='{{ DeviceName }}'",
        'work="$(mktemp -d)"',
        "trap 'rm -rf -- \"$work\"' EXIT",
        'if [ "$platform" = windows ] && ! command -v ntfs-3g >/dev/null 2>&1; then',
        '  echo "rescue: ntfs-3g is missing; installing it with apt-get" >&2',
        f"  if ! {{ {APT} update && DEBIAN_FRONTEND=noninteractive {APT} -y install ntfs-3g; }}"
        " >&2; then",
        '    echo "rescue: could not install ntfs-3g (is a package mirror reachable from the'
        " helper's subnet?); NTFS volumes cannot be mounted without it\" >&2",
        "  fi",
        "fi",
        f"base64 -d > \"$work/rescue.pyz\" <<'{ZIPAPP_HEREDOC}'",
        encoded,
        ZIPAPP_HEREDOC,
        'args=(--platform "$platform")',
        'if [ "$target" = / ]; then args+=(--root /); else args+=(--volume-id "$target"); fi',
        'if [ -n "$public_key" ]; then args+=(--public-key "$public_key"); fi',
        'if [ -n "$device_name" ]; then args+=(--device-name "$device_name"); fi',
        "status=0",
        'python3 "$work/rescue.pyz" "${args[@]}" || status=$?',
        'exit "$status"',
    ]


def document_content(zipapp: bytes) -> dict[str, Any]:
    """The document as SSM stores it (schema 2.2)."""
    return {
        "schemaVersion": "2.2",
        "description": (
            "ResetAccess rescue agent: puts an SSH public key into a Linux root volume's "
            "authorized_keys, or re-enables Windows password generation. Target is a volume "
            "attached to this instance, or / for this instance's own root."
        ),
        "parameters": {
            "Platform": {
                "type": "String",
                "description": "The target's platform.",
                "allowedValues": list(PLATFORMS),
            },
            "Target": {
                "type": "String",
                "description": "The attached volume to repair (vol-...), or / for this instance.",
                "allowedPattern": TARGET_PATTERN,
            },
            "PublicKey": {
                "type": "String",
                "description": "OpenSSH public key line to authorize (Linux); empty for Windows.",
                "default": "",
                "allowedPattern": PUBLIC_KEY_PATTERN,
            },
            "DeviceName": {
                "type": "String",
                "description": "The device name the volume was attached under (offline).",
                "default": "",
                "allowedPattern": DEVICE_NAME_PATTERN,
            },
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "rescue",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {"timeoutSeconds": "600", "runCommand": shell_script(zipapp)},
            }
        ],
    }


def content_size(content: dict[str, Any]) -> int:
    """Bytes of the content as SSM receives it (compact JSON)."""
    return len(json.dumps(content, separators=(",", ":")).encode("utf-8"))


class RescueDocument(Construct):
    """The Command document that runs the agent on the helper, or online on the target."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.content = document_content(build_zipapp_bytes())
        size = content_size(self.content)
        if size > MAX_CONTENT_BYTES:
            raise ValueError(
                f"the rescue document is {size} bytes; SSM allows {MAX_CONTENT_BYTES}. "
                "Shrink the agent (rescue/) or split what it embeds."
            )
        self.document = ssm.CfnDocument(
            self,
            "Document",
            document_type="Command",
            document_format="JSON",
            content=self.content,
            target_type="/AWS::EC2::Instance",
            # Content changes become a new default version instead of a replacement document,
            # so its name (in every function's environment) stays put.
            update_method="NewVersion",
        )
        self.document_name: str = self.document.ref
