"""The engine's hook on every AWS call: a pipeline of named layers, then moto.

botocore's one call path (`BaseClient._make_api_call`) is wrapped for the lifetime of a local
AWS. Each call passes the layers' `before` in order (count, IAM, AWS's rules, eventual
consistency; any may refuse by raising), is answered by moto, and passes their `after` in
reverse order. The engine decides which layers there are (local/engine.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.client


@dataclass(frozen=True)
class Call:
    """One AWS API call as a layer sees it."""

    client: Any
    service: str
    operation: str
    params: dict[str, Any]
    # The function making it, None for the engine's own calls (world, interpreter).
    function: str | None


def _nothing_after(call: Call, response: Any) -> None:
    """A layer with nothing to do once moto answered."""


@dataclass(frozen=True)
class Layer:
    name: str
    before: Callable[[Call], None]
    after: Callable[[Call, Any], None] = _nothing_after


class CallPipeline:
    """Context manager: every botocore call in this process goes through `layers`."""

    def __init__(self, layers: Sequence[Layer], caller: Callable[[], str | None]) -> None:
        self.layers = list(layers)
        self.caller = caller
        self.original = botocore.client.BaseClient._make_api_call

    def call(self, client: Any, operation: str, params: dict[str, Any]) -> Any:
        call = Call(
            client, client.meta.service_model.endpoint_prefix, operation, params, self.caller()
        )
        for layer in self.layers:
            layer.before(call)
        response = self.original(client, operation, params)
        for layer in reversed(self.layers):
            layer.after(call, response)
        return response

    def __enter__(self) -> CallPipeline:
        pipeline = self

        def through_layers(client: Any, operation: str, params: dict[str, Any]) -> Any:
            return pipeline.call(client, operation, params)

        botocore.client.BaseClient._make_api_call = through_layers
        return self

    def __exit__(self, *exc: Any) -> None:
        botocore.client.BaseClient._make_api_call = self.original
