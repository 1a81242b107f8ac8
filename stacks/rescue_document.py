"""The rescue SSM Command document: the `rescue/` agent as a zipapp, run by a short shell script.

The agent travels inside the document (minified, xz-compressed, base85), so the helper needs no
S3 access, no pip and no network beyond SSM's; the document's version pins the agent's version.

`python -m stacks.rescue_document` prints where the document's bytes go.
"""

from __future__ import annotations

import base64
import json
import lzma
import re
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.logic.rescue_contract import (
    MAX_KEY_BASE64,
    MAX_KEY_COMMENT,
    PUBLIC_KEY_PATTERN,
    python_gate_script,
)
from rescue.build import PACKAGE_DIR, agent_sources, build_zipapp, minify_source

# SSM refuses Command documents over 64 KB, runtime parameter values included; the stack keeps
# well under it so that the agent can grow (tests/stack checks the document with its largest
# parameter values against SIZE_BUDGET).
MAX_CONTENT_BYTES = 64 * 1024
SIZE_BUDGET = 60_000
# Kept in hand under the budget so that growth shows in a test before the budget is reached
# (5 KB of packed agent is about 20 KB of source).
RESERVE_BYTES = 5_000

PLATFORMS = ("linux", "windows")
TARGET_PATTERN = r"^(vol-[0-9a-f]{8,17}|/)$"
ZIPAPP_HEREDOC = "RESCUE_ZIPAPP"
# One xz stream; LZMA2 with pb=0 suits text (measured: ~90 bytes less than preset 9e alone), and a
# 1 MiB dictionary, far above the zipapp's size, is all the helper's decoder has to allocate
# (preset 9's is 64 MiB).
XZ_FILTERS = [
    {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 20, "pb": 0}
]
# base85 (Python's RFC 1924 alphabet) costs 25% over the bytes where base64 costs 33%: about 3 KB
# less document for this agent. Its alphabet has no quote, backslash or control character, so
# JSON escapes nothing in it; it does have { and }, and SSM reads {{ ... }} as a parameter
# reference, so those two travel as , and . (which the alphabet lacks) and are swapped back.
B85_SWAP = (b"{}", b",.")
UNPACK = (  # in the script's single quotes: it has none
    "import base64, lzma, sys; data = sys.stdin.buffer.read().strip()"
    f'.translate(bytes.maketrans(b"{B85_SWAP[1].decode()}", b"{B85_SWAP[0].decode()}"));'
    " sys.stdout.buffer.write(lzma.decompress(base64.b85decode(data)))"
)
# The helper is a fresh instance: apt may still be busy with its first-boot upgrades.
APT = "apt-get -q -o DPkg::Lock::Timeout=180"


def build_zipapp_bytes() -> bytes:
    """The agent as the zipapp `rescue.build` makes (deterministic: same sources, same bytes)."""
    with tempfile.TemporaryDirectory(prefix="rescue-zipapp-") as tmp:
        return build_zipapp(Path(tmp) / "rescue.pyz").read_bytes()


def compress(zipapp: bytes) -> bytes:
    """One xz stream (reproducible: xz has no timestamps); any python3 lzma reads it as it is."""
    return lzma.compress(zipapp, format=lzma.FORMAT_XZ, filters=XZ_FILTERS)


def pack(zipapp: bytes) -> str:
    """The zipapp as the document carries it: xz, then base85 with { and } swapped out."""
    encoded = base64.b85encode(compress(zipapp)).translate(bytes.maketrans(*B85_SWAP))
    return encoded.decode("ascii")


def unpack(packed: str) -> bytes:
    """What the document's script does to the packed agent (UNPACK), for checks and tools."""
    data = packed.strip().encode("ascii").translate(bytes.maketrans(B85_SWAP[1], B85_SWAP[0]))
    return lzma.decompress(base64.b85decode(data))


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
        f"python3 -c '{UNPACK}' <<'{ZIPAPP_HEREDOC}' > \"$work/rescue.pyz\"",
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


# The longest value each parameter admits: the longest choice, the longest volume ID, and the
# longest key type with OpenSSH's largest key (16384-bit RSA) padded and the longest comment.
LARGEST_VALUES = {
    "Platform": "windows",
    "Target": "vol-" + "0" * 17,
    "PublicKey": "sk-ecdsa-sha2-nistp256@openssh.com "
    + "A" * MAX_KEY_BASE64
    + "== "
    + "c" * MAX_KEY_COMMENT,
}


def size_with_values(content: dict[str, Any], values: dict[str, str]) -> int:
    """What SSM counts against its quota at run time: the content with each {{ Name }} filled
    in, plus the values themselves once."""
    step = content["mainSteps"][0]["inputs"]
    script = re.sub(
        r"\{\{\s*(\w+)\s*\}\}", lambda m: values[m.group(1)], "\n".join(step["runCommand"])
    )
    rendered = {
        **content,
        "mainSteps": [
            {**content["mainSteps"][0], "inputs": {**step, "runCommand": script.split("\n")}}
        ],
    }
    return content_size(rendered) + sum(len(v) for v in values.values())


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


def size_report() -> str:
    """Where the document's bytes go, module by module (`python -m stacks.rescue_document`)."""
    zipapp = build_zipapp_bytes()
    content = document_content(zipapp)
    alone = content_size(content)
    largest = size_with_values(content, LARGEST_VALUES)
    packed = pack(zipapp)
    lines = [f"{'module':34} {'source':>7} {'minified':>8} {'alone, xz':>9}"]
    for path in agent_sources():
        name = path.relative_to(PACKAGE_DIR.parent).as_posix()
        source = path.read_text(encoding="utf-8")
        minified = minify_source(source, name).encode("utf-8")
        lines.append(
            f"{name:34} {len(source.encode()):7} {len(minified):8} {len(compress(minified)):9}"
        )
    lines += [
        f"zipapp {len(zipapp)} bytes; xz {len(compress(zipapp))}; base85 {len(packed)}",
        f"document {alone} bytes (script and JSON around the agent: {alone - len(packed)}); "
        f"{largest} with the largest parameter values; {SIZE_BUDGET - largest} under the "
        f"tests' {SIZE_BUDGET} (they keep {RESERVE_BYTES:,} in hand), "
        f"{MAX_CONTENT_BYTES - largest} under SSM's {MAX_CONTENT_BYTES}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(size_report())
