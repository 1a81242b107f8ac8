"""What every phase handler shares: Powertools singletons, AWS clients, the error wrapper."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, overload

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.errors import AwsError, AwsTransient, ResetAccessError
from lambdas.logic import inflight
from lambdas.logic.names import resource_name

logger = Logger(service="reset-access")
tracer = Tracer(service="reset-access")

Event = dict[str, Any]
Handler = Callable[[Event, Any], Any]

# Standard retry mode absorbs throttling inside one invocation, before the ASL's Retry has to.
_BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5})
_clients: dict[str, Any] = {}
# Per thread: the local engine runs a Parallel's branches in threads of one process.
_invocation = threading.local()

# Set only by the local engine to inject faults around a phase's side effect; None in AWS.
fault_hook: Callable[[str, str], None] | None = None


def client(service: str) -> Any:
    """One client per service per container, reused across warm invocations."""
    if service not in _clients:
        _clients[service] = boto3.client(service, config=_BOTO_CONFIG)
    return _clients[service]


def reset_clients() -> None:
    """Forget cached clients (the local engine calls this when it starts a new world)."""
    _clients.clear()


@overload
def phase(logic: Callable[[Event], Any]) -> Handler: ...


@overload
def phase(*, changes: bool = ...) -> Callable[[Callable[[Event], Any]], Handler]: ...


def phase(logic: Callable[[Event], Any] | None = None, *, changes: bool = False
          ) -> Handler | Callable[[Callable[[Event], Any]], Handler]:
    """Turn a plain function of the event into a Lambda handler.

    The execution name becomes the log correlation ID, and a deliberate error carries the name
    of the state that raised it, so that a failed execution says where it failed. A phase that
    `changes` something marks itself in flight while it runs (lambdas/logic/inflight.py), so
    that the failure path can wait for it.
    """

    def wrap(logic: Callable[[Event], Any]) -> Handler:
        @functools.wraps(logic)
        @logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
        @tracer.capture_lambda_handler(capture_response=False)
        def handler(event: Event, context: Any) -> Any:
            state = str(event.get("state") or logic.__name__)
            if isinstance(event.get("execution"), str):
                event = {**event, "execution": resource_name(event["execution"])}
            execution = event.get("execution")
            token = str(getattr(context, "aws_request_id", "") or id(event))
            _invocation.token = token
            marked = False
            try:
                if changes and execution:
                    inflight.begin(client("dynamodb"), _lock_table(), str(execution), token)
                    marked = True
                if fault_hook:
                    fault_hook(state, "before")
                result = logic(event)
                if fault_hook:
                    fault_hook(state, "after")
                return result
            except ResetAccessError as error:
                message = str(error)
                if not message.startswith(f"{state}: "):
                    error.args = (f"{state}: {message}",)
                raise
            except ClientError as error:
                raise as_workflow_error(state, error) from error
            except BotoCoreError as error:
                raise AwsTransient(f"{state}: {error}") from error
            finally:
                if marked:
                    inflight.end(client("dynamodb"), _lock_table(), str(execution), token)

        return handler

    return wrap(logic) if logic is not None else wrap


def invocation_token() -> str:
    """This invocation's mark (its Lambda request ID)."""
    return str(getattr(_invocation, "token", ""))


def _lock_table() -> str:
    return os.environ["LOCK_TABLE_NAME"]


_TRANSIENT_CODES = {
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
    "RequestTimeout", "RequestTimeoutException", "ProvisionedThroughputExceededException",
}


def as_workflow_error(state: str, error: ClientError) -> ResetAccessError:
    """Name an AWS refusal so the ASL can tell what to retry, and say which call failed."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    operation = getattr(error, "operation_name", "call")
    message = error.response.get("Error", {}).get("Message", str(error))
    kind = AwsTransient if code in _TRANSIENT_CODES else AwsError
    return kind(f"{state}: {operation} failed with {code}: {message}")
