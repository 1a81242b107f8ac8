"""Accounts and Regions in one local AWS: where each call of the engine and of each function is.

moto keeps accounts apart by the caller's credentials (an assumed role's key maps to the role's
account) and Regions by the client's Region. A Lambda function in AWS runs in its own account
and Region, with its role's credentials and its Region in its environment. Here the functions
of every location run in one process, in threads: each invocation sees its own function's
environment (a per-thread layer over `os.environ`) and the engine's emulation reads the backend
of the location whose call it serves (`current()`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple

import boto3

from local import sessions
from local.emulator import ACCOUNT, REGION

# The header moto reads for the account of a request it cannot tell from the credentials.
ACCOUNT_HEADER = "x-moto-account-id"


class Location(NamedTuple):
    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


HOME = Location(ACCOUNT, REGION)
_here = threading.local()


def current() -> Location:
    """The location whose call this thread is serving (the engine's own: its home)."""
    return getattr(_here, "location", None) or HOME


class ThreadEnviron(MutableMapping[str, str]):
    """os.environ with a per-thread layer on top: a function's own variables while it runs."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base

    def _layer(self) -> Mapping[str, str]:
        layer: Mapping[str, str] = getattr(_here, "environment", None) or {}
        return layer

    def __getitem__(self, key: str) -> str:
        layer = self._layer()
        return layer[key] if key in layer else self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**self.base, **self._layer()})

    def __len__(self) -> int:
        return len({**self.base, **self._layer()})

    def copy(self) -> dict[str, str]:
        return dict(self)


@contextlib.contextmanager
def per_thread_environment() -> Iterator[None]:
    """os.environ reads a thread's function environment first, for the life of a local AWS."""
    original = os.environ
    # Not to clear it (B003): a layer over the same variables, so every reader sees them.
    os.environ = ThreadEnviron(original)  # type: ignore[assignment]  # noqa: B003
    try:
        yield
    finally:
        os.environ = original  # noqa: B003


@contextlib.contextmanager
def at(location: Location, environment: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run the block as in `location`, with that function's environment on top of the base."""
    saved = (getattr(_here, "location", None), getattr(_here, "environment", None))
    _here.location = location
    _here.environment = dict(environment) if environment is not None else saved[1]
    try:
        yield
    finally:
        _here.location, _here.environment = saved


def client(service: str, location: Location = HOME) -> Any:
    """The engine's own client (an administrator of that account) in a location; the home
    account's are made once per world."""
    if location.account == ACCOUNT:
        return sessions.client(service, location.region)
    made = boto3.client(service, region_name=location.region)

    def in_account(request: Any, **_: Any) -> None:
        request.headers[ACCOUNT_HEADER] = location.account

    made.meta.events.register("before-sign.*.*", in_account)
    return made


def of_arn(arn: str) -> Location:
    """arn:partition:service:region:account:... -> its location."""
    parts = arn.split(":")
    return Location(parts[4], parts[3])
