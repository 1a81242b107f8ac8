"""One local account (the engine's world with the stack deployed) for every acceptance run of
the module: building it costs seconds, a run on it a fraction of that."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.acceptance import LocalAccount, local_account


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAccount]:
    with local_account(workdir=Path(tmp_path_factory.mktemp("acceptance-world"))) as made:
        yield made
