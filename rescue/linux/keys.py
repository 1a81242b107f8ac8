"""The OpenSSH public key to inject: strict parsing and its SHA256 fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import NamedTuple

from .. import RescueError

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


class PublicKey(NamedTuple):
    key_type: str
    blob: str  # base64 text exactly as it appears in authorized_keys
    comment: str

    @property
    def line(self) -> str:
        """The authorized_keys line written for this key (no options: none are accepted)."""
        return f"{self.key_type} {self.blob} {self.comment}".rstrip()

    @property
    def fingerprint(self) -> str:
        """Same text as `ssh-keygen -lf`: SHA256 of the blob, base64 without padding."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """Accept one `type base64 [comment]` line; refuse options, extra lines and bad blobs.

    The key is written verbatim into files that sshd parses, so anything that could
    smuggle a second line or an option (`command=...`) in is refused.
    """
    if any(ch in text for ch in "\r\n\0"):
        raise RescueError("--public-key must be a single line: 'ssh-ed25519 AAAA... comment'")
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise RescueError(
            "--public-key is not an OpenSSH public key: expected '<type> <base64> [comment]' "
            f"with a type among {', '.join(sorted(KEY_TYPES))}"
        )
    key_type, blob = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    try:
        raw = base64.b64decode(blob, validate=True)
        (name_len,) = struct.unpack(">I", raw[:4])
        embedded_type = raw[4 : 4 + name_len].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError) as exc:
        raise RescueError(
            "--public-key has a base64 part that does not decode to an SSH key"
        ) from exc
    if embedded_type != key_type:
        raise RescueError(
            f"--public-key says {key_type} but its data holds a {embedded_type!r} key"
        )
    if not all(ch.isprintable() for ch in comment):
        raise RescueError("--public-key has control characters in its comment")
    return PublicKey(key_type, blob, comment)
