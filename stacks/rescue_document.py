"""The rescue SSM Command document: the `rescue/` agent as a zipapp, run by a short shell script.

The agent travels inside the document (xz-compressed, base64), so the helper needs no S3 access,
no pip and no network beyond SSM's; the document's version pins the agent's version.
"""

from __future__ import annotations

import base64
import json
import lzma
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.logic.rescue_contract import PUBLIC_KEY_PATTERN, python_gate_script
from rescue.build import build_zipapp

# SSM refuses Command documents over 64 KB, runtime parameter values included; the stack keeps
# well under it so that the agent can grow (tests/infra checks the document with its largest
# parameter values against SIZE_BUDGET).
MAX_CONTENT_BYTES = 64 * 1024
SIZE_BUDGET = 60_000

PLATFORMS = ("linux", "windows")
TARGET_PATTERN = r"^(vol-[0-9a-f]{8,17}|/)$"
ZIPAPP_HEREDOC = "RESCUE_ZIPAPP"
UNXZ = "import lzma, sys; sys.stdout.buffer.write(lzma.decompress(sys.stdin.buffer.read()))"
# The helper is a fresh instance: apt may still be busy with its first-boot upgrades.
APT = "apt-get -q -o DPkg::Lock::Timeout=180"


def build_zipapp_bytes() -> bytes:
    """The agent as the zipapp `rescue.build` makes (deterministic: same sources, same bytes)."""
    with tempfile.TemporaryDirectory(prefix="rescue-zipapp-") as tmp:
        return build_zipapp(Path(tmp) / "rescue.pyz").read_bytes()


def pack(zipapp: bytes) -> str:
    """The zipapp as the document carries it: one xz stream, base64 (reproducible: xz has no
    timestamps)."""
    packed = lzma.compress(zipapp, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    return base64.b64encode(packed).decode("ascii")


def shell_script(zipapp: bytes) -> list[str]:
    """The aws:runShellScript lines; SSM fills the {{ }} parameters before bash runs them."""
    return [
        "#!/bin/bash",
        "set -euo pipefail",
        "platform='{{ Platform }}'",
        "target='{{ Target }}'",
        "public_key='{{ PublicKey }}'",
        *python_gate_script(),
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
        f"base64 -d <<'{ZIPAPP_HEREDOC}' | python3 -c '{UNXZ}' > \"$work/rescue.pyz\"",
        pack(zipapp),
        ZIPAPP_HEREDOC,
        'args=(--platform "$platform")',
        'if [ "$target" = / ]; then args+=(--root /); else args+=(--volume-id "$target"); fi',
        'if [ -n "$public_key" ]; then args+=(--public-key "$public_key"); fi',
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
            # Content changes become a new version (CloudFormation also makes it the default)
            # instead of a replacement document, so its name stays put; RunRescue sends $LATEST.
            update_method="NewVersion",
        )
        self.document_name: str = self.document.ref
