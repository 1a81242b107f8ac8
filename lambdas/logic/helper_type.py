"""Helpers must be Nitro instances: the agent finds the moved volume by its NVMe serial.

On Xen (DescribeInstanceTypes Hypervisor "xen") an EBS volume shows as /dev/xvdX with no serial
that names its volume ID, so the agent could only trust the device name and might repair
whatever disk sits there; Preflight refuses such a type before anything changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import InstanceTypeInfoTypeDef

# The current-generation Nitro family for each Xen one (AWS's previous-generation guide).
NITRO_FAMILY = {
    "t1": "t3",
    "t2": "t3",
    "m1": "m5",
    "m2": "r5",
    "m3": "m5",
    "m4": "m5",
    "c1": "c5",
    "c3": "c5",
    "c4": "c5",
    "r3": "r5",
    "r4": "r5",
    "i2": "i3en",
    "i3": "i4i",
    "d2": "d3",
    "h1": "d3en",
    "g2": "g4dn",
    "g3": "g4dn",
    "p2": "g4dn",
    "p3": "p3dn",
    "x1": "x2iedn",
    "x1e": "x2iedn",
    "f1": "f2",
}
# Sizes the t3/m5/c5/r5 families have: the suggestion keeps them, else names a large.
COMMON_SIZES = ("small", "medium", "large", "xlarge", "2xlarge", "4xlarge")


def nitro_equivalent(instance_type: str) -> str:
    family, _, size = instance_type.partition(".")
    nitro = NITRO_FAMILY.get(family, "t3")
    if family in ("t1", "t2") and size in ("nano", "micro"):
        size = "small"  # the helper needs 2 GiB for its first-boot updates
    return f"{nitro}.{size}" if size in COMMON_SIZES else f"{nitro}.large"


def require_nitro(info: InstanceTypeInfoTypeDef) -> None:
    """info: the type's DescribeInstanceTypes entry."""
    if info.get("Hypervisor") == "nitro" or info.get("BareMetal"):
        return
    instance_type = info.get("InstanceType", "?")
    raise InvalidInput(
        f"HelperInstanceType: {instance_type} runs on the Xen hypervisor, where the helper "
        "cannot tell the moved root volume from any other disk by its ID; use a Nitro type "
        f"such as {nitro_equivalent(instance_type)}"
    )
