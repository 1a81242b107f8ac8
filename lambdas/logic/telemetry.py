"""The finished run as CloudWatch metrics: Powertools Metrics in the embedded metric format
(EMF), one JSON line in the function's log that CloudWatch turns into metrics, no API call.

Per run: `Resets` (1) with the dimensions Outcome, Mode and Path (online, offline, or fallback:
online failed and the helper did it), `DowntimeSeconds` and `TotalSeconds`; per phase,
`PhaseSeconds` with the dimension Phase. The stack's dashboard reads them (stacks/operations.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "ResetAccess"
# Where EMF lines go: the function's stdout in AWS (the local engine points it at its log).
stream: TextIO | None = None


def path_of(result: dict[str, Any]) -> str:
    if result.get("OnlineError"):
        return "fallback"
    return str(result.get("Mode") or "none")


def emit(
    outcome: str, result: dict[str, Any], downtime: float | None = None
) -> list[dict[str, Any]]:
    """Write the run's metrics; returns the EMF documents written."""
    metrics = Metrics(namespace=NAMESPACE)
    metrics.add_dimension(name="Outcome", value=outcome)
    metrics.add_dimension(name="Mode", value=str(result.get("Mode") or "none"))
    metrics.add_dimension(name="Path", value=path_of(result))
    metrics.add_metric(name="Resets", unit=MetricUnit.Count, value=1)
    seconds: dict[str, float] = result.get("PhaseSeconds") or {}
    if "Total" in seconds:
        metrics.add_metric(name="TotalSeconds", unit=MetricUnit.Seconds, value=seconds["Total"])
    if downtime is not None:
        metrics.add_metric(name="DowntimeSeconds", unit=MetricUnit.Seconds, value=downtime)
    documents: list[Any] = [metrics.serialize_metric_set()]
    metrics.clear_metrics()
    for phase, value in seconds.items():
        if phase == "Total":
            continue
        metrics.add_dimension(name="Phase", value=phase)
        metrics.add_metric(name="PhaseSeconds", unit=MetricUnit.Seconds, value=value)
        documents.append(metrics.serialize_metric_set())
        metrics.clear_metrics()
    out = stream or sys.stdout
    for document in documents:
        out.write(json.dumps(document, separators=(",", ":")) + "\n")
    return documents
