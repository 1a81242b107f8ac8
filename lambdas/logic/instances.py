"""Stopping, starting and watching the target instance."""

from __future__ import annotations

from typing import Any

from lambdas.errors import NotReady, UnexpectedState


def instance_state(ec2: Any, instance_id: str) -> str:
    reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    return str(reservation["Instances"][0]["State"]["Name"])


def stop_instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    state = instance_state(ec2, instance_id)
    if state in ("running", "pending"):
        ec2.stop_instances(InstanceIds=[instance_id])
        return {"Stopped": True, "PreviousState": state}
    if state in ("stopping", "stopped"):
        return {"Stopped": False, "PreviousState": state}
    raise UnexpectedState(f"{instance_id} is {state}; it cannot be stopped")


def wait_instance_state(ec2: Any, instance_id: str, wanted: str) -> dict[str, Any]:
    state = instance_state(ec2, instance_id)
    if state == wanted:
        return {"State": state}
    if state in ("terminated", "shutting-down"):
        raise UnexpectedState(f"{instance_id} is {state}; it will never be {wanted}")
    raise NotReady(f"{instance_id} is {state}, waiting for {wanted}")


def restore_delete_on_termination(ec2: Any, plan: dict[str, Any]) -> bool:
    """A volume attached by AttachVolume gets DeleteOnTermination false; put the original back."""
    instance = ec2.describe_instances(InstanceIds=[plan["InstanceId"]])["Reservations"][0][
        "Instances"][0]
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == plan["RootDeviceName"]:
            current = bool(mapping.get("Ebs", {}).get("DeleteOnTermination"))
            if current != plan["RootDeleteOnTermination"]:
                ec2.modify_instance_attribute(
                    InstanceId=plan["InstanceId"],
                    BlockDeviceMappings=[{
                        "DeviceName": plan["RootDeviceName"],
                        "Ebs": {"DeleteOnTermination": plan["RootDeleteOnTermination"]},
                    }],
                )
                return True
    return False


def restore_instance(ec2: Any, plan: dict[str, Any]) -> dict[str, Any]:
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
