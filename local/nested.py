"""Where moto 5.2.5 runs Step Functions' own integration (`states:startExecution`, the fleet's
nested ResetAccess executions) differently from AWS, corrected (tests/local/test_nested.py):

- Parameters: the ASL names StartExecution's fields as AWS's API reference does
  (StateMachineArn, Name, Input); moto hands them to boto3 unchanged, whose model names them
  stateMachineArn, name, input, and the Task fails States.Runtime. They are renamed here.
- Output: AWS gives a service integration's response with the API reference's member names
  (ExecutionArn, StartDate, Status, Output...) and times as epoch milliseconds (Step Functions
  Developer Guide, "Start a new AWS Step Functions state machine from a running execution":
  `.sync:2` returns DescribeExecution's response with Output as JSON). moto keeps boto3's
  camelCase names, and then fails to find ExecutionArn for `.sync`; they are renamed here.
- Stop: stopping an execution stops the executions its `.sync` tasks started (Developer Guide,
  "Discover service integration patterns": for Run a Job (.sync), if the execution is stopped,
  Step Functions stops the job it started). moto leaves them running; here they are stopped.
- Accounts: a Task's calls (Lambda Invoke, StartExecution...) are made with the state
  machine's role, or the role named by the Task's `Credentials.RoleArn`, in that role's
  account (Developer Guide, "Accessing resources in other AWS accounts": the execution role
  assumes the target role, whose trust policy must allow it). moto makes every one with a fixed
  key in its default account, so a member account's ResetAccess could not invoke its own
  functions and a `Credentials.RoleArn` changed nothing. Here each call is made in the role's
  account, and a role whose trust policy does not allow the execution role is refused
  (local/trust.py).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

# Parent execution ARN -> the executions its tasks started.
_started: dict[str, list[str]] = defaultdict(list)
_lock = threading.Lock()


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _epoch_millis(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


def _parameters(original: Callable[..., None]) -> Callable[..., None]:
    def normalise(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original(self, parameters, *args, **kwargs)
        for key in list(parameters):
            parameters[_camel(key)] = parameters.pop(key)

    return normalise


def _response(
    self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
) -> None:
    if isinstance(response, dict):
        # The top level only: Output is the child's own JSON.
        renamed = {key[:1].upper() + key[1:]: _epoch_millis(v) for key, v in response.items()}
        response.clear()
        response.update(renamed)


def _recording(original: Callable[..., None]) -> Callable[..., None]:
    """Remember which execution started which, for the stop."""

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        started = env.stack[-1] if env.stack else None
        parent = env.states.context_object.context_object_data["Execution"]["Id"]
        if isinstance(started, dict) and "executionArn" in started:
            with _lock:
                _started[parent].append(str(started["executionArn"]))

    return eval_service_task


def _stopping_children(original: Callable[..., None]) -> Callable[..., None]:
    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        original(self, stop_date=stop_date, error=error, cause=cause)
        with _lock:
            children = list(_started.get(self.exec_arn, ()))
        for child_arn in children:
            child = _find(child_arn)
            if child is not None and child.exec_status == "RUNNING":
                child.stop(
                    stop_date=datetime.datetime.now(tz=datetime.UTC),
                    error="States.Aborted",
                    cause=f"stopped with the execution that started it, {self.exec_arn}",
                )

    return stop


def _find(execution_arn: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _, _, _, region, account, *_ = execution_arn.split(":")
    backend = stepfunctions_parser_backends[account][region]
    return next((e for e in backend._get_executions() if e.exec_arn == execution_arn), None)


# The modules of moto's interpreter that make its calls (imported, then patched where used).
_CLIENT_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_aws_sdk",
)


def _in_role_account(original: Callable[..., Any]) -> Callable[..., Any]:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from local import locations
        from local.emulator import ACCOUNT

        made = original(region=region, service=service, state_credentials=state_credentials)
        role_arn = str(getattr(state_credentials, "role_arn", "") or "")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ACCOUNT
        if account != ACCOUNT:

            def in_account(request: Any, **_: Any) -> None:
                request.headers[locations.ACCOUNT_HEADER] = account

            made.meta.events.register("before-sign.*.*", in_account)
        return made

    return boto_client_for


def _trusted_credentials(original: Callable[..., Any]) -> Callable[..., Any]:
    """A Task's Credentials.RoleArn is assumed by the execution role: its trust must allow it."""

    def eval_state_credentials(self: Any, env: Any) -> Any:
        from local import trust

        found = original(self, env)
        if self.credentials:
            trust.check(str(found.role_arn), str(env.aws_execution_details.role_arn))
        return found

    return eval_state_credentials


@contextlib.contextmanager
def corrections() -> Iterator[None]:
    """The corrections for one local AWS; Execution.stop is patched after emulator's own."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn_task,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.backend.execution import Execution

    service = sfn_task.StateTaskServiceSfn
    _started.clear()
    with contextlib.ExitStack() as stack:
        as_role = _in_role_account(boto_client.boto_client_for)
        for name in _CLIENT_USERS:
            stack.enter_context(
                mock.patch.object(importlib.import_module(name), "boto_client_for", as_role)
            )
        stack.enter_context(
            mock.patch.object(
                StateTask,
                "_eval_state_credentials",
                _trusted_credentials(StateTask._eval_state_credentials),
            )
        )
        stack.enter_context(
            mock.patch.object(
                service, "_normalise_parameters", _parameters(service._normalise_parameters)
            )
        )
        stack.enter_context(mock.patch.object(service, "_normalise_response", _response))
        stack.enter_context(
            mock.patch.object(service, "_eval_service_task", _recording(service._eval_service_task))
        )
        stack.enter_context(
            mock.patch.object(Execution, "stop", _stopping_children(Execution.stop))
        )
        yield
