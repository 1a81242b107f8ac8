"""How each Task retries and where a failure goes, named once: a policy change is one edit here.

Error names are the class names in lambdas/errors.py (Step Functions names a Lambda error by
its class) and the Lambda service's own errors (AWS Step Functions Developer Guide, "Handle
Lambda service exceptions"; a function killed at its timeout is Sandbox.Timedout or
Lambda.Unknown).
"""

from __future__ import annotations

from typing import Any

Retrier = dict[str, Any]
Catcher = dict[str, Any]

NOT_READY = "NotReady"
RESCUE_FAILED = "RescueFailed"
ALL_ERRORS = "States.ALL"

# Every phase is retry-safe (tests/faults: a retryable fault after the side effect heals), so
# the Lambda service's transient failures, a function timeout and a transient AWS call in the
# handler are all run again, spread out by full jitter.
TRANSIENT: Retrier = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
        "Sandbox.Timedout",
        "AwsTransient",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}


def poll(interval: int, attempts: int, backoff: float, max_delay: int) -> Retrier:
    """A poll: the phase raises NotReady until the world is as wanted, and is asked again."""
    return {
        "ErrorEquals": [NOT_READY],
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
        "MaxDelaySeconds": max_delay,
    }


def schedule(retrier: Retrier) -> list[float]:
    """The waits before each retry, as Step Functions computes them (no jitter)."""
    interval = float(retrier.get("IntervalSeconds", 1))
    backoff = float(retrier.get("BackoffRate", 2.0))
    cap = float(retrier.get("MaxDelaySeconds", float("inf")))
    return [min(interval * backoff**i, cap) for i in range(retrier.get("MaxAttempts", 3))]


# The waits on the critical path see a change within 3 s at first and within 6 s in the tail,
# each as long in all as before: docs/latencies.md weighs this against more Describe calls.
QUICK_INTERVAL, QUICK_BACKOFF, QUICK_MAX_DELAY = 3, 1.1, 6
VOLUME = poll(QUICK_INTERVAL, 95, QUICK_BACKOFF, QUICK_MAX_DELAY)  # a volume detaches/attaches
RESCUE = poll(QUICK_INTERVAL, 197, QUICK_BACKOFF, QUICK_MAX_DELAY)  # the rescue command reports
# The helper is running (the target's cue to stop).
HELPER_LAUNCHED = poll(QUICK_INTERVAL, 66, QUICK_BACKOFF, QUICK_MAX_DELAY)
# The helper boots until SSM manages it.
HELPER_READY = poll(QUICK_INTERVAL, 193, QUICK_BACKOFF, QUICK_MAX_DELAY)
INSTANCE = poll(QUICK_INTERVAL, 193, QUICK_BACKOFF, QUICK_MAX_DELAY)  # the instance stops/starts
RESTORE = poll(5, 30, 1.5, 20)  # the instance accepts its start
CLEANUP = poll(5, 60, 1.3, 20)  # the helper terminates so its network can go
ROLLBACK = poll(3, 60, 1.3, 20)  # the volume and instance go back as they were
# The root volume replacement: EC2 attaches the copy and reboots the instance in place.
REPLACE_ROOT = poll(5, 60, 1.3, 15)
POLLS: dict[str, Retrier] = {
    "VOLUME": VOLUME,
    "RESCUE": RESCUE,
    "HELPER_LAUNCHED": HELPER_LAUNCHED,
    "HELPER_READY": HELPER_READY,
    "INSTANCE": INSTANCE,
    "RESTORE": RESTORE,
    "CLEANUP": CLEANUP,
    "ROLLBACK": ROLLBACK,
    "REPLACE_ROOT": REPLACE_ROOT,
}


def catch(next_state: str, result_path: str = "$.error", errors: str = ALL_ERRORS) -> Catcher:
    """Go to `next_state` on `errors`, keeping the error at `result_path` beside the run."""
    return {"ErrorEquals": [errors], "ResultPath": result_path, "Next": next_state}


# The errors our functions raise on purpose (the classes in lambdas/errors.py): Step Functions
# gives each a Cause that is the function's error as JSON, whose errorMessage is our sentence.
RAISED = (
    "InvalidInput",
    "Unsupported",
    "InstanceLocked",
    "NotReady",
    "RescueFailed",
    "UnexpectedState",
    "RollbackIncomplete",
    "AwsTransient",
    "AwsError",
    "BranchStopped",
    "InjectedFault",
)


def catch_raised(next_state: str, result_path: str) -> Catcher:
    """Go to `next_state` on an error our function raised (its Cause is JSON to read)."""
    return {"ErrorEquals": list(RAISED), "ResultPath": result_path, "Next": next_state}


# Once anything may have changed, any failure goes to Rollback, which puts things back.
TO_ROLLBACK: tuple[Catcher, ...] = (catch("Rollback"),)
