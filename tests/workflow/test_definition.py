"""The workflow definition built by statemachine/ (definition.py, policies.py, phases.py)."""

from __future__ import annotations

import json
from pathlib import Path

from statemachine.definition import definition

ASL_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "reset_access.asl.json"


def test_the_builder_makes_the_definition_the_file_held() -> None:
    assert definition() == json.loads(ASL_FILE.read_text(encoding="utf-8"))
