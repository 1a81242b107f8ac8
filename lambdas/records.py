"""What one phase hands to later ones through the execution's state, besides the plan.

Like the plan (lambdas/plan.py), these travel as JSON between Lambda invocations, so TypedDicts
describe them as they are; the ASL picks their fields by name (e.g. `$.network.SubnetId`).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class NetworkPieces(TypedDict):
    """The rest of a temporary VPC, recorded when one first attempt made all of it, so that
    cleanup can delete it by ID (IDs never change; lambdas/logic/cleanup.py checks for more)."""

    InternetGatewayId: str
    RouteTableId: str
    RouteTableAssociationId: str


class NetworkRecord(TypedDict):
    """PrepareNetwork: where the helper goes."""

    SubnetId: str
    SecurityGroupId: str
    VpcId: str
    # Made by this run (a temporary VPC), so cleanup deletes it.
    Created: bool
    # The helper needs a public IP to reach SSM (its way out is an internet gateway).
    PublicIp: bool
    # Only when a first attempt made the whole temporary VPC.
    Pieces: NotRequired[NetworkPieces]


class HelperRecord(TypedDict):
    """LaunchHelper: the helper instance and the Ubuntu image it runs."""

    InstanceId: str
    ImageId: str


class KeyRecord(TypedDict):
    """CreateKey: the public half that goes into the volume; the private half stays in SSM."""

    PublicKey: str | None
    Fingerprint: str | None
    # A key pair made here (not the caller's public key, not Windows).
    Generated: bool
    # Where the private half waits until PublishResult moves it (Generated only).
    PendingParameter: NotRequired[str]


class RescueCommand(TypedDict):
    """RunRescue: the Run Command invocation CheckRescue polls."""

    CommandId: str
    InstanceId: str
    DocumentName: str
