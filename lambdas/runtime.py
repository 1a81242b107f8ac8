"""What every phase handler shares: Powertools singletons, AWS clients, the error wrapper."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import Session

from lambdas.config import TIMEOUT_VARIABLE, Config
from lambdas.errors import AwsError, AwsTransient, InvalidInput, ResetAccessError
from lambdas.logic import consistency, inflight
from lambdas.names import resource_name

# Type stubs only (mypy-boto3-*, requirements-dev.txt): the functions' layer does not carry them.
if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient

if TYPE_CHECKING:
    from lambdas.logic.janitor import Clock

logger = Logger(service="reset-access")
# Only botocore is patched: the phases make no other calls worth a subsegment, and patching
# every library X-Ray knows imports them at cold start (python -m local.cold_start).
tracer = Tracer(service="reset-access", patch_modules=("botocore",))

Event = dict[str, Any]
Handler = Callable[[Event, Any], Any]

# Unset (the local engine), the clients fit the shortest function (statemachine/phases.py).
SHORTEST_FUNCTION_SECONDS = 20
CONNECT_SECONDS = 2.0
# A call's attempts, timeouts and backoff take at most this share of the function's time: the
# rest lets the handler report a named, retried AwsTransient before Lambda kills it.
CALL_SHARE = 0.75
_clients: dict[tuple[str, str], Any] = {}
# botocore's session, not boto3's: boto3 imports s3transfer, a third of a phase's cold start.
_session: dict[str, Session] = {}
# How a container's session is made: botocore's own, or the local engine's (reset_clients).
_new_session: list[Callable[[], Session]] = [Session]
# Per thread: the local engine runs a Parallel's branches in threads of one process.
_invocation = threading.local()


@dataclass(frozen=True)
class Seams:
    """What a harness (the local engine) hands a handler on its context as `context.seams`;
    AWS's Lambda context has none, so in AWS every seam is the real thing."""

    # Called with (state, "before" | "after") around a phase's side effect; may raise.
    fault: Callable[[str, str], None] | None = None
    # The janitor's time; None: the real clock.
    clock: Clock | None = None
    # The phases' waits for EC2's consistency (lambdas/logic/consistency.py); None: real time.
    sleep: Callable[[float], None] | None = None


NO_SEAMS = Seams()


def seams(context: Any) -> Seams:
    """The seams this invocation was given, none in AWS."""
    given = getattr(context, "seams", None)
    return given if isinstance(given, Seams) else NO_SEAMS


def backoff_bound(attempts: int) -> float:
    """The longest standard retry mode sleeps between `attempts` attempts (botocore
    retries/standard.py: rand * min(2**i, 20) s, raised by x-amz-retry-after to at most +5 s)."""
    return float(sum(min(2**i, 20) + 5 for i in range(attempts - 1)))


def worst_call_seconds(config: BotoConfig) -> float:
    """How long one call may take with this config before it raises, at the very worst."""
    retries = config.retries or {}
    attempts = int(retries.get("total_max_attempts") or 1)
    per_attempt = float(config.connect_timeout) + float(config.read_timeout)
    return attempts * per_attempt + backoff_bound(attempts)


def client_config(function_seconds: float) -> BotoConfig:
    """Timeouts and attempts such that a slow call fails inside the function, named and
    retried by the ASL, instead of outliving it (botocore's defaults: 60 s connect and read)."""
    attempts = 2 if function_seconds < 60 else 3 if function_seconds < 300 else 5
    budget = CALL_SHARE * function_seconds - backoff_bound(attempts)
    read = min(30.0, budget / attempts - CONNECT_SECONDS)
    if read < 1:
        raise ValueError(f"a {function_seconds} s function leaves no time for an AWS call")
    # Standard retry mode absorbs throttling inside one invocation, before the ASL's Retry has to.
    return BotoConfig(
        connect_timeout=CONNECT_SECONDS,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


@overload
def client(service: Literal["ec2"]) -> EC2Client: ...
@overload
def client(service: Literal["ssm"]) -> SSMClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["kms"]) -> KMSClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
@overload
def client(service: Literal["sts"]) -> Any: ...  # no mypy-boto3-sts among the stubs
@overload
def client(service: Literal["sns"]) -> Any: ...  # only Publish (lambdas/logic/notify.py)


def client(service: str) -> Any:
    """One client per service per container, reused across warm invocations, typed per
    service for mypy by the overloads above."""
    key = (_container(), service)
    if key not in _clients:
        _clients[key] = _botocore().create_client(
            service, config=client_config(_function_seconds())
        )
    return _clients[key]


def _container() -> str:
    """Whose clients: in AWS one function's per process; the local engine runs functions of
    several accounts and Regions in one process, each with its Region and credentials in its
    environment (local/locations.py)."""
    return f"{os.environ.get('AWS_REGION', '')}:{os.environ.get('AWS_ACCESS_KEY_ID', '')}"


def _botocore() -> Session:
    """The botocore session a container's clients come from (boto3 is not imported)."""
    container = _container()
    if container not in _session:
        _session[container] = _new_session[0]()
    return _session[container]


def _function_seconds() -> float:
    return float(os.environ.get(TIMEOUT_VARIABLE) or SHORTEST_FUNCTION_SECONDS)


def assumed(role_arn: str) -> dict[str, str]:
    """Client keyword arguments for a member account's role (a fleet's way into it); a role
    that cannot be assumed is refused naming what to deploy."""
    try:
        credentials = client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="ResetAccessFleet"
        )["Credentials"]
    except ClientError as error:
        raise InvalidInput(
            f"TargetLocations: cannot assume {role_arn} ({error.response['Error']['Code']}); "
            "deploy the member stack in that account and Region (cdk deploy -c "
            "deployment=member -c fleetAccount=<this account>)"
        ) from None
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def stepfunctions_in(region: str, role_arn: str | None = None) -> SFNClient:
    """Step Functions in another Region, as this function or (role_arn) as a member account's
    role; this function's own clients stay in its own Region."""
    if role_arn:
        # Assumed credentials expire: a fresh session per invocation, none kept warm.
        sfn: SFNClient = _botocore().create_client(
            "stepfunctions",
            region_name=region,
            config=client_config(_function_seconds()),
            **assumed(role_arn),
        )
        return sfn
    key = (_container(), f"stepfunctions@{region}")
    if key not in _clients:
        _clients[key] = _botocore().create_client(
            "stepfunctions", region_name=region, config=client_config(_function_seconds())
        )
    cached: SFNClient = _clients[key]
    return cached


def reset_clients(new_session: Callable[[], Session] | None = None) -> None:
    """Forget cached clients and sessions (the local engine calls this when it starts a new
    world); the next sessions come from `new_session` (the engine's, which share botocore's
    loaded models across worlds), or are botocore's own."""
    _clients.clear()
    _session.clear()
    _new_session[:] = [new_session or Session]


@overload
def phase(logic: Callable[[Event], Any]) -> Handler: ...


@overload
def phase(*, changes: bool = ...) -> Callable[[Callable[[Event], Any]], Handler]: ...


def phase(
    logic: Callable[[Event], Any] | None = None, *, changes: bool = False
) -> Handler | Callable[[Callable[[Event], Any]], Handler]:
    """Turn a plain function of the event into a Lambda handler.

    The execution name becomes the log correlation ID, and a deliberate error carries the name
    of the state that raised it, so that a failed execution says where it failed. A phase that
    `changes` something marks itself in flight while it runs inside a Parallel branch
    (`inParallel`, statemachine/states.py; lambdas/logic/inflight.py), so that the failure path
    can wait for it: elsewhere a Task's Catch runs only after its function returned. Once the
    failure path has closed the marks, such a phase raises BranchStopped and changes nothing.
    """

    def wrap(logic: Callable[[Event], Any]) -> Handler:
        # Read at the first invocation (cold start), as the handlers read theirs.
        config = functools.cache(Config.from_env)

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
            given = seams(context)
            fault = given.fault
            marked = False
            try:
                if changes and execution and event.get("inParallel") is True:
                    inflight.begin(
                        client("dynamodb"), config().lock_table_name, str(execution), token
                    )
                    marked = True
                if fault:
                    fault(state, "before")
                with consistency.waits(given.sleep) if given.sleep else contextlib.nullcontext():
                    result = logic(event)
                if fault:
                    fault(state, "after")
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
                    inflight.end(
                        client("dynamodb"), config().lock_table_name, str(execution), token
                    )

        return handler

    return wrap(logic) if logic is not None else wrap


def first_attempt(event: Event) -> bool:
    """A state's first attempt (`$$.State.RetryCount` 0): no earlier attempt of it can have made
    anything, so the look-ups that make a retry safe are skipped. Without a count (a test, the
    janitor) it is treated as a retry."""
    count = event.get("retryCount")
    return type(count) is int and count == 0


def invocation_token() -> str:
    """This invocation's mark (its Lambda request ID)."""
    return str(getattr(_invocation, "token", ""))


_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "ProvisionedThroughputExceededException",
}


def as_workflow_error(state: str, error: ClientError) -> ResetAccessError:
    """Name an AWS refusal so the ASL can tell what to retry, and say which call failed."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    operation = getattr(error, "operation_name", "call")
    message = error.response.get("Error", {}).get("Message", str(error))
    kind = AwsTransient if code in _TRANSIENT_CODES else AwsError
    return kind(f"{state}: {operation} failed with {code}: {message}")
