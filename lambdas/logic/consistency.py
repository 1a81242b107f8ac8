"""EC2's eventual consistency: a call naming a resource this execution just created may be
answered NotFound until the ID has propagated (Amazon EC2 Developer Guide, "Eventual
consistency in the Amazon EC2 API"). Such a call is retried a few times with backoff; any
other NotFound is an answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

NOT_YET_VISIBLE = frozenset({
    "InvalidGroup.NotFound", "InvalidInstanceID.NotFound", "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound", "InvalidVolume.NotFound", "InvalidAMIID.NotFound",
    "InvalidSnapshot.NotFound", "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound",
})
# AWS advises exponential backoff starting at a couple of seconds; 7.5 s in all keeps a call
# well inside the 60 s functions that make these calls.
DELAYS = (0.5, 1.0, 2.0, 4.0)
# The local engine scales this down (emulator.RETRY_TIME_SCALE); AWS waits the whole delay.
sleep: Callable[[float], None] = time.sleep


def not_yet_visible(error: BaseException) -> bool:
    """Is this EC2's answer for a resource whose ID has not propagated yet?"""
    return isinstance(error, ClientError) and error.response.get("Error", {}).get(
        "Code") in NOT_YET_VISIBLE


def settled(call: Callable[[], T]) -> T:
    """call(), retried while EC2 does not know yet the new resource it names."""
    for delay in DELAYS:
        try:
            return call()
        except ClientError as error:
            if not not_yet_visible(error):
                raise
        sleep(delay)
    return call()
