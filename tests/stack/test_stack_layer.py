"""The functions' layer (make layer) holds exactly the pinned packages, built for Lambda."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.synth import ROOT

LAYER = ROOT / "build" / "layer" / "python"
REQUIREMENTS = ROOT / "lambdas" / "requirements.txt"
ELF_MACHINE_AARCH64 = 0xB7


def pins() -> dict[str, str]:
    found = {}
    for raw in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        requirement = raw.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"{requirement!r}: pin every layer package with =="
            found[re.sub(r"[-_.]+", "_", name).lower()] = version
    return found


def installed() -> dict[str, str]:
    found = {}
    for info in LAYER.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[re.sub(r"[-_.]+", "_", name).lower()] = version
    return found


@pytest.fixture(scope="module", autouse=True)
def layer_is_built() -> None:
    if not LAYER.is_dir():
        pytest.fail("build/layer is missing: run `make layer`", pytrace=False)


def test_layer_holds_exactly_the_pinned_versions() -> None:
    assert installed() == pins()


def test_native_code_is_for_lambdas_arm64_python313() -> None:
    natives = [p for p in LAYER.rglob("*.so") if "cryptography" in p.parts or "_cffi" in p.name]
    assert natives, "cryptography's compiled parts are missing"
    for library in natives:
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", library
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, library
        assert "cpython-3" not in library.name or "cpython-313" in library.name, library


def test_layer_python_path_is_where_lambda_looks() -> None:
    # Lambda adds /opt/python to sys.path; a layer zip's `python/` becomes /opt/python.
    assert (LAYER / "aws_lambda_powertools").is_dir()
    assert Path(LAYER.name) == Path("python")
