"""Stopping, starting and watching the target instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.errors import NotReady, UnexpectedState
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef

# StateReason codes of a start EC2 accepted and could not carry out (EC2 API reference,
# StateReason); a stop of ours leaves Client.UserInitiatedShutdown, which only means "not yet".
START_FAILURES = frozenset(
    {
        "Client.InternalError",
        "Client.InvalidSnapshot.NotFound",
        "Client.VolumeLimitExceeded",
        "Server.InsufficientInstanceCapacity",
        "Server.InternalError",
    }
)


def _describe(ec2: EC2Client, instance_id: str) -> InstanceTypeDef:
    reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    return reservation["Instances"][0]


def instance_state(ec2: EC2Client, instance_id: str) -> str:
    return str(_describe(ec2, instance_id)["State"]["Name"])


def stop_instance(ec2: EC2Client, instance_id: str) -> dict[str, Any]:
    state = instance_state(ec2, instance_id)
    if state in ("running", "pending"):
        ec2.stop_instances(InstanceIds=[instance_id])
        return {"Stopped": True, "PreviousState": state}
    if state in ("stopping", "stopped"):
        return {"Stopped": False, "PreviousState": state}
    raise UnexpectedState(f"{instance_id} is {state}; it cannot be stopped")


def wait_instance_state(ec2: EC2Client, instance_id: str, wanted: str) -> dict[str, Any]:
    instance = _describe(ec2, instance_id)
    state = str(instance["State"]["Name"])
    if state == wanted:
        return {"State": state}
    if state in ("terminated", "shutting-down"):
        raise UnexpectedState(f"{instance_id} is {state}; it will never be {wanted}")
    reason = instance.get("StateReason") or {}
    # AWS accepts StartInstances and then stops the instance again when it cannot start it,
    # e.g. without rights on its volumes' KMS key (StateReason Client.InternalError): waiting
    # longer would only keep it down ("Troubleshoot instance launch issues").
    if wanted == "running" and state == "stopped" and reason.get("Code") in START_FAILURES:
        raise UnexpectedState(
            f"{instance_id} stopped again instead of starting: {reason.get('Message') or reason}"
            "; if its volumes are encrypted, check that their KMS key is enabled and that the "
            "key policy lets EC2 use it for this account"
        )
    raise NotReady(f"{instance_id} is {state}, waiting for {wanted}")


def restore_delete_on_termination(ec2: EC2Client, plan: Plan) -> bool:
    """A volume attached by AttachVolume gets DeleteOnTermination false; put the original back."""
    instance = ec2.describe_instances(InstanceIds=[plan["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == plan["RootDeviceName"]:
            current = bool(mapping.get("Ebs", {}).get("DeleteOnTermination"))
            if current != plan["RootDeleteOnTermination"]:
                ec2.modify_instance_attribute(
                    InstanceId=plan["InstanceId"],
                    BlockDeviceMappings=[
                        {
                            "DeviceName": plan["RootDeviceName"],
                            "Ebs": {"DeleteOnTermination": plan["RootDeleteOnTermination"]},
                        }
                    ],
                )
                return True
    return False


def restore_instance(ec2: EC2Client, plan: Plan) -> dict[str, Any]:
    changed = restore_delete_on_termination(ec2, plan)
    started = False
    if plan["InitialState"] == "running":
        state = instance_state(ec2, plan["InstanceId"])
        if state == "stopped":
            ec2.start_instances(InstanceIds=[plan["InstanceId"]])
            started = True
        elif state == "stopping":
            raise NotReady(f"{plan['InstanceId']} is still stopping")
    return {"DeleteOnTerminationRestored": changed, "Started": started}
