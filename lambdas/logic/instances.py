"""Stopping, starting and watching the target instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

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
    """StopInstances answers with the state it found and leaves a stopping or stopped instance
    as it is; it refuses one it cannot stop with IncorrectInstanceState, saying why (EC2 API
    reference). So EC2 is asked directly, with no Describe first (or at all: none is allowed)."""
    try:
        stopping = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "IncorrectInstanceState":
            raise
        message = error.response.get("Error", {}).get("Message", "")
        raise UnexpectedState(f"{instance_id} cannot be stopped: {message}") from None
    state = str(stopping["PreviousState"]["Name"])
    if state in ("running", "pending"):
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


def restore_delete_on_termination(
    ec2: EC2Client, plan: Plan, instance: InstanceTypeDef | None = None
) -> bool:
    """A volume attached by AttachVolume gets DeleteOnTermination false; put the original back.
    instance: the instance as just described, if the caller has it."""
    instance = instance or _describe(ec2, plan["InstanceId"])
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
    """No Describe: AttachVolume left the root's DeleteOnTermination false (what
    restore_delete_on_termination reads), so only a true one is set back, which is idempotent;
    StartInstances answers with the state it found and refuses a stopping instance."""
    changed = False
    if plan["RootDeleteOnTermination"]:
        ec2.modify_instance_attribute(
            InstanceId=plan["InstanceId"],
            BlockDeviceMappings=[
                {"DeviceName": plan["RootDeviceName"], "Ebs": {"DeleteOnTermination": True}}
            ],
        )
        changed = True
    started = False
    if plan["InitialState"] == "running":
        try:
            starting = ec2.start_instances(InstanceIds=[plan["InstanceId"]])["StartingInstances"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "IncorrectInstanceState":
                raise
            raise NotReady(f"{plan['InstanceId']} is still stopping") from None
        started = starting[0]["PreviousState"]["Name"] == "stopped"
    return {"DeleteOnTerminationRestored": changed, "Started": started}
