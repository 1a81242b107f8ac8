"""Build the agent as one self-contained zipapp (.pyz) for the SSM document and local runs.

The archive is reproducible (sorted entries, fixed timestamps): the same sources give the
same bytes, so the stack's asset hash changes only when the agent does. Docstrings, comments
and blank lines are left out (the SSM document that carries the agent has a 64 KB quota), and
entries are stored uncompressed so the document's one xz stream compresses across files.
"""

from __future__ import annotations

import ast
import io
import stat
import tokenize
import zipfile
from pathlib import Path
from typing import Dict, List, Set, Tuple

PACKAGE_DIR = Path(__file__).resolve().parent
EXCLUDED = {Path("build.py")}  # build-time only: the helper instance never runs it
ENTRY = "import sys\nfrom rescue.__main__ import main\nsys.exit(main())\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SHEBANG = b"#!/usr/bin/env python3\n"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def agent_sources() -> List[Path]:
    """Every module of the package, subpackages included, in a stable order."""
    return sorted(
        path for path in PACKAGE_DIR.rglob("*.py")
        if path.relative_to(PACKAGE_DIR) not in EXCLUDED and "__pycache__" not in path.parts
    )


def _docstrings(tree: ast.AST) -> Dict[int, Tuple[int, int, bool]]:
    """First line -> (last line, indent, whether it is its body's only statement)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str) and first.end_lineno is not None):
                found[first.lineno] = (first.end_lineno, first.col_offset, len(node.body) == 1)
    return found


def strip_source(source: str) -> str:
    """The module without docstrings, comments and blank lines; same code, same line order."""
    lines = source.splitlines(keepends=True)
    docstrings = _docstrings(ast.parse(source))
    comments: Dict[int, int] = {}
    in_strings: Set[int] = set()  # lines that continue a multi-line string: kept verbatim
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            in_strings.update(range(token.start[0] + 1, token.end[0] + 1))
    kept = []
    number = 1
    while number <= len(lines):
        if number in docstrings:
            last, indent, alone = docstrings[number]
            prefix = lines[number - 1][:indent]
            if not prefix.strip():  # a docstring on its own lines
                if alone:
                    kept.append(prefix + "pass\n")
                number = last + 1
                continue
        line = lines[number - 1]
        if number not in in_strings:
            if number in comments:
                line = line[: comments[number]].rstrip() + "\n"
            if not line.strip():
                number += 1
                continue
        kept.append(line)
        number += 1
    return "".join(kept)


def build_zipapp(dest: Path) -> Path:
    """Write the agent to dest (run it with `python3 dest ...`); return dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as handle:
        handle.write(SHEBANG)
        with zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(_entry("__main__.py"), ENTRY)
            for path in agent_sources():
                name = path.relative_to(PACKAGE_DIR.parent).as_posix()
                text = strip_source(path.read_text(encoding="utf-8"))
                archive.writestr(_entry(name), text.encode("utf-8"))
    dest.chmod(0o755)
    return dest
