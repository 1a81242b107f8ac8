"""The engine's call hook (local/calls.py): each AWS call passes the layers in order, moto
answers, the layers see the answer in reverse order; a layer that raises refuses the call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from moto import mock_aws

from local.calls import Call, CallPipeline, Layer


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sts", region_name="us-east-1")


def recording(name: str, log: list[str]) -> Layer:
    return Layer(
        name,
        before=lambda call: log.append(f"{name} before {call.operation}"),
        after=lambda call, response: log.append(f"{name} after {call.operation}"),
    )


def test_layers_run_in_order_around_moto(sts: Any) -> None:
    log: list[str] = []
    seen: list[Call] = []
    answered: list[Any] = []
    layers = [
        recording("first", log),
        Layer("look", before=seen.append, after=lambda call, response: answered.append(response)),
        recording("last", log),
    ]
    with CallPipeline(layers, caller=lambda: "ResetAccess-Preflight"):
        account = sts.get_caller_identity()["Account"]
    assert log == [
        "first before GetCallerIdentity",
        "last before GetCallerIdentity",
        "last after GetCallerIdentity",
        "first after GetCallerIdentity",
    ]
    assert [(c.service, c.operation, c.function) for c in seen] == [
        ("sts", "GetCallerIdentity", "ResetAccess-Preflight")
    ]
    assert answered[0]["Account"] == account


def test_a_refusing_layer_stops_the_call(sts: Any) -> None:
    log: list[str] = []

    def refuse(call: Call) -> None:
        raise PermissionError(f"{call.operation} refused")

    layers = [recording("first", log), Layer("refuse", refuse), recording("never", log)]
    with CallPipeline(layers, caller=lambda: None), pytest.raises(PermissionError):
        sts.get_caller_identity()
    assert log == ["first before GetCallerIdentity"]


def test_leaving_the_pipeline_restores_botocore(sts: Any) -> None:
    original = botocore.client.BaseClient._make_api_call
    log: list[str] = []
    with CallPipeline([recording("only", log)], caller=lambda: None):
        assert botocore.client.BaseClient._make_api_call is not original
    assert botocore.client.BaseClient._make_api_call is original
    sts.get_caller_identity()
    assert log == []
