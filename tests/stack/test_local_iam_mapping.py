"""The local engine's IAM map (local/iam_operations.py) knows every call a handler makes: a
call it did not know would fail loudly in the engine, and one it mapped wrongly could hide a
denial."""

from __future__ import annotations

from pathlib import Path

from local import iam_operations
from tests.support.aws_calls import Package

ROOT = Path(__file__).resolve().parents[2]


def test_every_call_a_handler_makes_is_mapped() -> None:
    package = Package(ROOT)
    handlers = sorted(
        p.stem for p in (ROOT / "lambdas" / "handlers").glob("*.py") if p.stem != "__init__"
    )
    called = set().union(*(package.actions(f"lambdas.handlers.{h}") for h in handlers))
    assert called  # the scan found the handlers' calls
    assert sorted(called - set(iam_operations.OPERATIONS)) == []
