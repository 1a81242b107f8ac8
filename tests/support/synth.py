"""The stack synthesized once per test session and shared by every xdist worker.

The first worker to get the lock synthesizes in-process (with cdk-nag, as `cdk synth` does) into
the session's shared temp folder; the others wait for it and read the files. A failed synth is
recorded too, so every test that needs it fails with the same message instead of retrying.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdas.names import STACK_NAME

# jsii prints a banner about Node 20 on every start; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]
STACK = STACK_NAME


@dataclass(frozen=True)
class Synth:
    """What one synthesis produced."""

    outdir: Path
    seconds: float
    template: dict[str, Any]
    metadata: dict[str, list[dict[str, Any]]]
    validation: dict[str, Any] | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template["Resources"])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def nag_violations(self) -> list[str]:
        """cdk-nag's unacknowledged findings, as "rule at construct path"."""
        assert self.validation is not None, "cdk-nag did not run (no validation-report.json)"
        return [
            f"{v['ruleName']} at {c['constructPath']}"
            for report in self.validation["pluginReports"]
            for v in report["violations"]
            for c in v["violatingConstructs"]
        ]

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{STACK}.template.json"


def functions_by_handler(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    found = {}
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        handler = function["Properties"]["Handler"]
        module, _, entry = handler.rpartition(".")
        assert module.startswith("lambdas.handlers.") and entry == "handler", handler
        found[module.removeprefix("lambdas.handlers.")] = (logical_id, function)
    return found


def _synthesize(outdir: Path, context: dict[str, Any] | None = None) -> float:
    # Imported here: only the worker that synthesizes pays for starting jsii.
    from stacks.app import build_app

    started = time.monotonic()
    # Assets stay where they are (no copy of the 50 MB layer): the tests read the template only.
    app, _ = build_app(
        outdir=str(outdir), context={"aws:cdk:disable-asset-staging": True, **(context or {})}
    )
    try:
        app.synth()
    except RuntimeError as error:
        # cdk-nag findings fail synthesis after the files are written: the report says which.
        if "ValidationFailed" not in str(error):
            raise
    return time.monotonic() - started


def synth_once(shared: Path, context: dict[str, Any] | None = None) -> Synth:
    """The synthesis in `shared` (a folder every worker sees), made by the first to come;
    `context`: CDK context values for a synthesis of its own (give it its own folder)."""
    shared.mkdir(parents=True, exist_ok=True)
    outdir = shared / "cdk.out"
    done = shared / "synth.json"
    with (shared / "synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            try:
                record: dict[str, Any] = {"seconds": _synthesize(outdir, context)}
            except Exception:  # noqa: BLE001 - every worker must see the same failure
                record = {"error": traceback.format_exc()}
            done.write_text(json.dumps(record), encoding="utf-8")
    record = json.loads(done.read_text(encoding="utf-8"))
    if "error" in record:
        pytest.fail(f"synthesis failed:\n{record['error']}", pytrace=False)
    report = outdir / "validation-report.json"
    return Synth(
        outdir=outdir,
        seconds=float(record["seconds"]),
        template=json.loads((outdir / f"{STACK}.template.json").read_text(encoding="utf-8")),
        metadata=json.loads((outdir / f"{STACK}.metadata.json").read_text(encoding="utf-8")),
        validation=json.loads(report.read_text(encoding="utf-8")) if report.exists() else None,
    )
