"""EC2's eventual consistency: a call naming a resource this execution just created may be
answered NotFound until the ID has propagated (Amazon EC2 Developer Guide, "Eventual
consistency in the Amazon EC2 API"). Such a call is retried a few times with backoff; any
other NotFound is an answer."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

NOT_YET_VISIBLE = frozenset(
    {
        "InvalidGroup.NotFound",
        "InvalidInstanceID.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidVolume.NotFound",
        "InvalidAMIID.NotFound",
        "InvalidSnapshot.NotFound",
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
    }
)
# AWS advises exponential backoff starting at a couple of seconds; 7.5 s in all keeps a call
# well inside the 60 s functions that make these calls.
DELAYS = (0.5, 1.0, 2.0, 4.0)
# How this invocation waits: AWS waits the whole delay; the local engine passes a scaled sleep
# on the handler's context (lambdas/runtime.py Seams.sleep).
_sleep: ContextVar[Callable[[float], None]] = ContextVar("sleep", default=time.sleep)


@contextlib.contextmanager
def waits(sleep: Callable[[float], None]) -> Iterator[None]:
    """Within this block, the waits for a new resource's ID use `sleep`."""
    token = _sleep.set(sleep)
    try:
        yield
    finally:
        _sleep.reset(token)


def not_yet_visible(error: BaseException) -> bool:
    """Is this EC2's answer for a resource whose ID has not propagated yet?"""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") in NOT_YET_VISIBLE
    )


def settled(call: Callable[[], T]) -> T:
    """call(), retried while EC2 does not know yet the new resource it names."""
    for delay in DELAYS:
        try:
            return call()
        except ClientError as error:
            if not not_yet_visible(error):
                raise
        _sleep.get()(delay)
    return call()
