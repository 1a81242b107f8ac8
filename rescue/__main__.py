"""Command line of the rescue agent; see docs/interfaces.md for the contract.

  python3 -m rescue --platform linux   --volume-id vol-... --public-key 'ssh-ed25519 AAAA... c'
  python3 -m rescue --platform linux   --root /mnt/tree   --public-key '...'
  python3 -m rescue --platform windows --volume-id vol-...
  python3 -m rescue --platform windows --root /mnt/tree

Exit 0 with {"ok": true, ...}; 1 when it refused or failed (nothing half-done is left
mounted); 2 for a bad command line; 3 for an unexpected error. Every outcome prints one
JSON line on stdout (and failures also on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional

from . import RescueError
from .disk.devices import find_volume_device
from .disk.mounts import mount_volume_root
from .linux.authorized_keys import inject_key
from .linux.keys import PublicKey, parse_public_key
from .report import chain_messages, emit_failure, emit_success

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage, not JSON
        raise UsageError(message)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = _Parser(prog="rescue", description="Give access back to an EC2 root volume.")
    parser.add_argument("--platform", required=True, choices=("linux", "windows"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--volume-id", help="attached EBS volume to find, mount and repair")
    target.add_argument("--root", type=Path, help="an already mounted root tree, or / online")
    parser.add_argument("--public-key", help="OpenSSH public key line (linux)")
    args = parser.parse_args(argv)
    if args.platform == "linux" and not args.public_key:
        raise UsageError("--public-key is required for --platform linux")
    if args.platform == "windows" and args.public_key:
        raise UsageError("--public-key is for --platform linux only")
    return args


def windows_repair() -> Callable[[Path], Dict[str, Any]]:
    """rescue.windows is written apart; a build without it must say so, not crash."""
    try:
        module = importlib.import_module(f"{__package__}.windows")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.windows":
            raise
        raise RescueError(
            "this build of the agent has no Windows support (rescue/windows/ is missing): "
            "rebuild the agent from a checkout that has it"
        ) from exc
    repair: Callable[[Path], Dict[str, Any]] = module.enable_password_generation
    return repair


def repair_tree(
    root: Path,
    platform: str,
    key: Optional[PublicKey],
    unavailable: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    if platform == "windows":
        return dict(windows_repair()(root))
    if key is None:
        raise UsageError("--public-key is required for --platform linux")
    return inject_key(root, key, unavailable)


def tree_source(root: Path) -> Dict[str, Any]:
    """The device and filesystem holding an already mounted tree (for the report)."""
    real = os.path.realpath(root)
    best = ("", "", "")
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            mountpoint = fields[4]
            inside = real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/")
            if inside and len(mountpoint) >= len(best[0]):
                tail = fields[fields.index("-") + 1 :]
                best = (mountpoint, tail[1], tail[0])
    return {"device": best[1] or None, "partition": None, "filesystem": best[2] or None}


def run_agent(args: argparse.Namespace) -> Dict[str, Any]:
    key = parse_public_key(args.public_key) if args.platform == "linux" else None
    if args.root is not None:
        if not args.root.is_dir():
            raise RescueError(f"--root {args.root} is not a directory")
        return {**tree_source(args.root), **repair_tree(args.root, args.platform, key)}
    if args.platform == "windows":
        windows_repair()  # fail before touching any disk
    device = find_volume_device(args.volume_id)
    with mount_volume_root(device, args.platform) as mounted:
        fields = repair_tree(mounted.path, args.platform, key, mounted.unavailable)
    return {
        "device": mounted.device,
        "partition": mounted.partition,
        "filesystem": mounted.filesystem,
        **mounted.details,
        **fields,
    }


def main(argv: Optional[List[str]] = None) -> int:
    started = time.monotonic()
    try:
        args = parse_args(argv)
        fields = run_agent(args)
    except UsageError as exc:
        emit_failure(f"bad command line: {exc}; see python3 -m rescue --help")
        return EXIT_USAGE
    except (RescueError, OSError) as exc:
        emit_failure("; then: ".join(chain_messages(exc)))
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the contract is one JSON line, whatever happens
        emit_failure(
            f"internal error ({type(exc).__name__}): {'; then: '.join(chain_messages(exc))}"
        )
        return EXIT_INTERNAL
    emit_success(
        {"platform": args.platform, **fields, "seconds": round(time.monotonic() - started, 3)}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
