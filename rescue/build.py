"""Build the agent as one self-contained zipapp (.pyz) for the SSM document and local runs.

The archive is reproducible (sorted entries, fixed timestamps): the same sources give the
same bytes, so the stack's asset hash changes only when the agent does.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
EXCLUDED = {"build.py"}  # build-time only: the helper instance never runs it
ENTRY = "# -*- coding: utf-8 -*-\nimport sys\nfrom rescue.__main__ import main\nsys.exit(main())\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SHEBANG = b"#!/usr/bin/env python3\n"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def build_zipapp(dest: Path) -> Path:
    """Write the agent to dest (run it with `python3 dest ...`); return dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Subpackages too (rescue/windows/), sorted by archive name so the bytes never vary.
    names = sorted(path.relative_to(PACKAGE_DIR).as_posix() for path in PACKAGE_DIR.rglob("*.py"))
    sources = [name for name in names if name not in EXCLUDED]
    with dest.open("wb") as handle:
        handle.write(SHEBANG)
        with zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(_entry("__main__.py"), ENTRY)
            for name in sources:
                archive.writestr(_entry(f"rescue/{name}"), (PACKAGE_DIR / name).read_bytes())
    dest.chmod(0o755)
    return dest
