"""EC2's eventual consistency, which moto does not have: a resource just created is not yet
known to the calls that name it.

AWS (Amazon EC2 Developer Guide, "Eventual consistency in the Amazon EC2 API"): "if you run a
command to modify or describe the resource that you just created, its ID might not have
propagated throughout the system, and you will get an error responding that the resource does
not exist" -- InvalidInstanceID.NotFound after RunInstances, InvalidGroup.NotFound after
CreateSecurityGroup, and so on. moto answers at once. Here, each resource a handler creates is
unknown to the first N calls that name it by ID (N drawn per resource from a seed, so a run is
repeatable); a Describe by filter is not refused, as AWS answers it with what it knows.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# ID prefix -> the error EC2 answers while that resource has not propagated yet.
NOT_FOUND = {
    "i-": "InvalidInstanceID.NotFound",
    "sg-": "InvalidGroup.NotFound",
    "igw-": "InvalidInternetGatewayID.NotFound",
    "rtb-": "InvalidRouteTableID.NotFound",
    "vol-": "InvalidVolume.NotFound",
    "ami-": "InvalidAMIID.NotFound",
    "snap-": "InvalidSnapshot.NotFound",
    "vpc-": "InvalidVpcID.NotFound",
    "subnet-": "InvalidSubnetID.NotFound",
}
# Where a create call's answer holds the new resource's ID.
_CREATED = {
    "CreateVpc": ("Vpc", "VpcId"),
    "CreateSubnet": ("Subnet", "SubnetId"),
    "CreateInternetGateway": ("InternetGateway", "InternetGatewayId"),
    "CreateRouteTable": ("RouteTable", "RouteTableId"),
    "CreateSecurityGroup": ("GroupId",),
    "CreateImage": ("ImageId",),
    "CreateSnapshot": ("SnapshotId",),
    "CreateVolume": ("VolumeId",),
}


@dataclass
class EventualConsistency:
    """seed: which lag each resource gets; max_lag: at most that many NotFound answers per
    resource (at least one each)."""

    seed: int = 0
    max_lag: int = 2
    lag_left: dict[str, int] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_spec(cls, spec: Any) -> EventualConsistency | None:
        """The scenario's `eventual_consistency`: true, or {"seed": n, "max_lag": n}."""
        if not spec:
            return None
        if spec is True:
            return cls()
        return cls(seed=int(spec.get("seed", 0)), max_lag=int(spec.get("max_lag", 2)))

    def _lag(self, resource_id: str) -> int:
        # From the seed and the ID alone: the same world gives the same lags whatever the
        # order in which a Parallel's branches create their resources.
        digest = hashlib.sha256(f"{self.seed}/{resource_id}".encode()).digest()
        return 1 + digest[0] % max(1, self.max_lag)

    def before(self, service: str, operation: str, params: dict[str, Any]) -> None:
        """Refuse the call as EC2 would if it names a resource that has not propagated yet."""
        if service != "ec2":
            return
        with self._lock:
            for resource_id in _named_ids(params):
                if self.lag_left.get(resource_id, 0) > 0:
                    self.lag_left[resource_id] -= 1
                    code = next(c for p, c in NOT_FOUND.items() if resource_id.startswith(p))
                    self.injected[f"{operation}:{code}"] += 1
                    raise ClientError(
                        {
                            "Error": {
                                "Code": code,
                                "Message": f"The ID '{resource_id}' does not exist",
                            }
                        },
                        operation,
                    )

    def after(self, service: str, operation: str, response: dict[str, Any]) -> None:
        """Note the resources this call created."""
        if service != "ec2":
            return
        created: list[str] = []
        if operation == "RunInstances":
            created = [i["InstanceId"] for i in response.get("Instances", [])]
        elif operation == "CopyVolumes":
            created = [v["VolumeId"] for v in response.get("Volumes", [])]
        elif operation in _CREATED:
            value: Any = response
            for key in _CREATED[operation]:
                value = value.get(key, {}) if isinstance(value, dict) else {}
            created = [value] if isinstance(value, str) else []
        with self._lock:
            for resource_id in created:
                self.lag_left.setdefault(resource_id, self._lag(resource_id))


def _named_ids(params: Any, key: str = "") -> Iterator[str]:
    """Every resource ID the request names, outside Filters (a filter is answered, not
    refused)."""
    if key == "Filters":
        return
    if isinstance(params, dict):
        for name, value in params.items():
            yield from _named_ids(value, name)
    elif isinstance(params, list):
        for value in params:
            yield from _named_ids(value, key)
    elif isinstance(params, str) and params.startswith(tuple(NOT_FOUND)):
        yield params
