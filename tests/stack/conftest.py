"""The stack tests' one fixture: the synthesized stack (tests/support/synth.py makes it)."""

from __future__ import annotations

import pytest

from tests.support.synth import Synth, synth_once


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Synth:
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        # Each xdist worker's base temp dir sits inside the one session folder they all share.
        shared = shared.parent
    return synth_once(shared)
