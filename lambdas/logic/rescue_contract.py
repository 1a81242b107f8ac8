"""What the workflow and the rescue document agree on: one definition each, used by both.

The PublicKey line the input validator accepts is the one the document's allowedPattern admits,
and the python3 check the document runs first reports in words the workflow recognizes.
"""

from __future__ import annotations

import json
import re

PUBLIC_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# OpenSSH refuses RSA moduli over 16384 bits (SSH_RSA_MAXIMUM_MODULUS_SIZE, sshkey.h), the
# largest key of any type it loads: its blob is "ssh-rsa", e and a 2049-byte n, each with a
# 4-byte length = 2071 bytes, whose base64 is 2762 characters and "==".
MAX_KEY_BLOB_BYTES = 4 + len("ssh-rsa") + 4 + 3 + 4 + 16384 // 8 + 1
MAX_KEY_BASE64 = -(-MAX_KEY_BLOB_BYTES // 3) * 4
MAX_KEY_COMMENT = 255
# The line lands inside single quotes in the document's script, so it admits no quote,
# backslash, `$`, backtick or newline: nothing a caller passes can leave the quotes.
PUBLIC_KEY_LINE = (
    "("
    + "|".join(re.escape(t) for t in sorted(PUBLIC_KEY_TYPES))
    + ")"
    + f" [A-Za-z0-9+/]{{16,{MAX_KEY_BASE64}}}={{0,2}}"
    + f"( [A-Za-z0-9@._+=:,/-][A-Za-z0-9@._+=:,/ -]{{0,{MAX_KEY_COMMENT - 1}}})?"
)
# The document's parameter: a key line, or empty (Windows).
PUBLIC_KEY_PATTERN = f"^({PUBLIC_KEY_LINE})?$"

# The document runs the agent with the target's python3 online; it needs this version or later
# (Amazon Linux 2's python3 is 3.7; CentOS and RHEL 7's 3.6 is too old).
MIN_PYTHON = (3, 7)
# The report's "reason" and the script's exit status when python3 cannot run the agent.
PYTHON_UNSUITABLE = "python3-unsuitable"
EXIT_PYTHON_UNSUITABLE = 4
_PYTHON_MESSAGE = (
    "python3 on this instance is %s; the rescue agent needs Python {min} or later with the "
    "lzma module. Use Mode offline (or auto), which runs the agent on a helper instance, or "
    "install a newer python3 on the instance"
).format(min=".".join(map(str, MIN_PYTHON)))


def unsuitable_python_message(found: str) -> str:
    """What the document reports when the python3 it finds (version, or 'missing') cannot run
    the agent."""
    return _PYTHON_MESSAGE % found


def python_gate_script() -> list[str]:
    """Shell lines that stop the document with one JSON report (reason PYTHON_UNSUITABLE) before
    the agent is unpacked, where python3 is missing, older than MIN_PYTHON or has no lzma.
    The Python part keeps to syntax that Python 3.0 parses, so an old python3 can say so."""
    missing = unsuitable_python_message("missing")
    report = json.dumps({"ok": False, "reason": PYTHON_UNSUITABLE, "error": missing})
    return [
        "if ! command -v python3 >/dev/null 2>&1; then",
        f"  echo '{report}'",
        f"  echo '{missing}' >&2",
        f"  exit {EXIT_PYTHON_UNSUITABLE}",
        "fi",
        "python3 - <<'PYTHON_GATE' || exit $?",
        "import json, sys",
        "found = '%d.%d.%d' % tuple(sys.version_info[:3])",
        f"usable = tuple(sys.version_info[:2]) >= {MIN_PYTHON!r}",
        "try:",
        "    import lzma",
        "except ImportError:",
        "    found, usable = found + ' without the lzma module', False",
        "if not usable:",
        f"    message = {_PYTHON_MESSAGE!r} % found",
        f"    report = {{'ok': False, 'reason': {PYTHON_UNSUITABLE!r}, 'error': message}}",
        "    print(json.dumps(report))",
        "    sys.stderr.write(message + '\\n')",
        f"    sys.exit({EXIT_PYTHON_UNSUITABLE})",
        "PYTHON_GATE",
    ]
