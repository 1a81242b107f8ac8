"""Build the agent as one self-contained zipapp (.pyz) for the SSM document and local runs.

The SSM document that carries the agent has a 64 KB quota, so each module is minified
(python-minifier: no docstrings, comments or annotations, short local names; module-level names
stay, since other modules import them) and entries are stored uncompressed so that the
document's one xz stream compresses across files. The archive is reproducible (sorted entries,
fixed timestamps, a pinned minifier): the same sources give the same bytes, so the stack's asset
hash changes only when the agent does.

Build-time only, like python-minifier: the helper instance runs the zipapp, never this module.
"""

from __future__ import annotations

import contextlib
import stat
import zipfile
from pathlib import Path
from typing import Any, Iterator, List

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
        path
        for path in PACKAGE_DIR.rglob("*.py")
        if path.relative_to(PACKAGE_DIR) not in EXCLUDED and "__pycache__" not in path.parts
    )


@contextlib.contextmanager
def _fstrings_before_pep701() -> Iterator[None]:
    """Make python-minifier print f-strings in the grammar of Python 3.7 to 3.11.

    On Python 3.12+ it prints them for the running interpreter (PEP 701: f"{", ".join(x)}"),
    which is a SyntaxError where the agent runs (3.7+). Printing them as on 3.11 gives the same
    bytes whichever Python builds the agent.
    """
    from python_minifier import expression_printer, f_string

    printer = expression_printer.ExpressionPrinter
    original = printer.visit_JoinedStr

    def visit_joined_str(self: Any, node: Any) -> None:
        fstring = f_string.OuterFString(node, pep701=False)  # type: ignore[no-untyped-call]
        self.printer.fstring(str(fstring))

    printer.visit_JoinedStr = visit_joined_str  # type: ignore[method-assign]
    try:
        yield
    finally:
        printer.visit_JoinedStr = original  # type: ignore[method-assign]


def minify_source(source: str, filename: str = "<agent>") -> str:
    """The module as the zipapp carries it: the same behaviour in fewer bytes."""
    import python_minifier

    with _fstrings_before_pep701():
        return python_minifier.minify(
            source,
            filename=filename,
            remove_literal_statements=True,  # docstrings
            # NamedTuple and dataclass fields are class annotations: those must stay.
            remove_annotations=python_minifier.RemoveAnnotationsOptions(
                remove_variable_annotations=True,
                remove_return_annotations=True,
                remove_argument_annotations=True,
                remove_class_attribute_annotations=False,
            ),
            rename_locals=True,
            # Other modules import module-level names (and reports name classes): keep them all.
            rename_globals=False,
            # Measured: hoisting repeated strings into names shortens the source but the xz
            # stream grows (~400 bytes), since xz already encodes repeats cheaply.
            hoist_literals=False,
            combine_imports=True,
            remove_asserts=False,
            remove_debug=False,
            preserve_shebang=False,
        )


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
                text = minify_source(path.read_text(encoding="utf-8"), name)
                archive.writestr(_entry(name), text.encode("utf-8"))
    dest.chmod(0o755)
    return dest
