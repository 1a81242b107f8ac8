"""The sessions and clients of a local AWS: a fresh botocore session per world (as every Lambda
container and every run of the engine has its own), all sharing what botocore reads from its
data files (service models, endpoints, partitions) once per process.

botocore keeps what it loads in the session's data loader, so a new session re-decodes every
service model (a sixth of a local run's CPU). The loader, the endpoint resolver and the
exception classes hold only what botocore's data files say, never credentials, Region or
configuration, so sharing them changes no request; each session still resolves its own.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session
from botocore.errorfactory import ClientExceptionsFactory
from botocore.loaders import Loader, create_loader
from botocore.regions import EndpointResolver

from local.emulator import REGION

_lock = threading.RLock()
_shared: dict[str, Any] = {}
# The engine's own clients in the current world, by (service, Region).
_clients: dict[tuple[str, str], Any] = {}


def shared_loader() -> Loader:
    """The process's one data loader: each service model is decoded once."""
    with _lock:
        if "loader" not in _shared:
            _shared["loader"] = create_loader()
        loader: Loader = _shared["loader"]
        return loader


def _endpoint_resolver() -> EndpointResolver:
    with _lock:
        if "resolver" not in _shared:
            loader = shared_loader()
            endpoints, path = loader.load_data_with_path("endpoints")
            _shared["resolver"] = EndpointResolver(
                endpoints, uses_builtin_data=loader.is_builtin_path(path)
            )
            _shared["exceptions"] = ClientExceptionsFactory()
        resolver: EndpointResolver = _shared["resolver"]
        return resolver


def session() -> botocore.session.Session:
    """A new botocore session over the shared loader, resolver and exception classes."""
    fresh = botocore.session.Session()
    fresh.register_component("data_loader", shared_loader())
    # botocore internals, safe at the version pinned in lambdas/requirements.txt.
    fresh._register_internal_component("endpoint_resolver", _endpoint_resolver())
    fresh._register_internal_component("exceptions_factory", _shared["exceptions"])
    return fresh


def begin_world() -> None:
    """boto3's default session (moto's mock sets it to None) on a new shared-loader session,
    and no client of an earlier world; called once the world's mock is active."""
    _clients.clear()
    boto3.DEFAULT_SESSION = boto3.Session(botocore_session=session())
    # boto3 appends its own data directory at every Session: once is enough.
    paths = shared_loader().search_paths
    paths[:] = list(dict.fromkeys(paths))


def client(service: str, region: str = REGION) -> Any:
    """The engine's client for the service in the current world, made once per world."""
    key = (service, region)
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.client(service, region_name=region)
        return _clients[key]


def end_world() -> None:
    """Drop the ended world's clients (their moto backends are gone)."""
    _clients.clear()
