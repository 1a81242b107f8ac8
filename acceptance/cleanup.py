"""An acceptance run's clean-up: delete what the run made, on every path, and list what is left.

Each deletion finds what it deletes both by the ID the run recorded and by the run's tag (a
create whose answer never arrived still tagged what it made), and waits until AWS lets the next
one go (an instance before its volumes and security group, an AMI before its snapshots).
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from acceptance.account import Account
from acceptance.report import explain
from lambdas.names import ACCEPTANCE_TAG, EXECUTION_TAG, LOCK_KEY, OWN_PARAMETERS, key_parameter


class CleanUp(Account):
    """The deletions, in the order AWS allows them, and the list of what is left behind."""

    def clean_up(self) -> None:
        """Delete what this run made; each action runs even if one before it failed."""
        for name, action in (
            ("executions", self._end_executions),
            ("instance", self._terminate),
            ("volumes", self._delete_volumes),
            ("connect endpoint", self._delete_endpoint),
            ("key pair", self._delete_key_pair),
            ("security group", self._delete_security_group),
            ("backups", self._delete_backups),
            ("parameters", self._delete_parameters),
        ):
            began = self.clock()
            try:
                detail = action()
            except Exception as error:  # noqa: BLE001 - the next deletion still runs
                self.record(self.report.cleanup, name, "failed", began, explain(error, name))
                continue
            if detail:
                self.record(self.report.cleanup, name, "ok", began, detail)
        self.report.left = self.leftovers()
        self.facts.pop("private_key", None)

    def _end_executions(self) -> str:
        sfn = self.client("stepfunctions")
        stopped = []
        for arn in self.facts.get("execution_arns", []):
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                sfn.stop_execution(
                    executionArn=arn,
                    error="AcceptanceCleanUp",
                    cause="the acceptance run was interrupted",
                )
                stopped.append(arn.rsplit(":", 1)[-1])
        if not stopped:
            return ""
        # The stack's janitor rolls the stopped run back and releases the instance's lock.
        table = self.facts.get("lock_table")
        if table and self.made.instance_id:
            dynamodb = self.client("dynamodb")
            for arn in self.facts.get("execution_arns", []):
                sfn.describe_execution(executionArn=arn)

            def released() -> bool:
                return "Item" not in dynamodb.get_item(
                    TableName=table,
                    Key={LOCK_KEY: {"S": self.made.instance_id}},
                    ConsistentRead=True,
                )

            self.wait(
                released,
                self.options.cleanup_timeout,
                f"the janitor did not release {self.made.instance_id}",
            )
        return f"stopped {', '.join(stopped)}; the janitor rolled it back"

    def _terminate(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        found = [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=self.mine())["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        ]
        ids = sorted(set(found) | ({self.made.instance_id} if self.made.instance_id else set()))
        if not ids:
            return ""
        self.made.instance_id = self.made.instance_id or ids[0]
        self.eventually(lambda: ec2.terminate_instances(InstanceIds=ids))

        def gone() -> bool:
            reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
            return all(
                i["State"]["Name"] == "terminated" for r in reservations for i in r["Instances"]
            )

        self.wait(gone, self.options.cleanup_timeout, f"{', '.join(ids)} did not terminate")
        return f"{', '.join(ids)} terminated"

    def _delete_volumes(self) -> str:
        """A root volume that a stopped run left detached does not go with the instance, and
        one still detaching from the terminated instance is deleted once it is free."""
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        deleted: list[str] = []

        def settled() -> bool:
            busy = False
            for volume in ec2.describe_volumes(Filters=self.mine())["Volumes"]:
                if volume["State"] == "available":
                    ec2.delete_volume(VolumeId=volume["VolumeId"])
                    deleted.append(volume["VolumeId"])
                elif volume["State"] == "in-use" and any(
                    a["InstanceId"] == self.made.instance_id for a in volume.get("Attachments", [])
                ):
                    busy = True  # still detaching from the terminated instance
            return not busy

        self.wait(settled, self.options.cleanup_timeout, "a volume of the run is still attached")
        return f"deleted {', '.join(deleted)}" if deleted else ""

    def _delete_endpoint(self) -> str:
        """Only one this run created; the security group can go once the endpoint has."""
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        ids = (
            {
                e["InstanceConnectEndpointId"]
                for e in ec2.describe_instance_connect_endpoints(Filters=self.mine())[
                    "InstanceConnectEndpoints"
                ]
            }
            if self.facts.get("private")
            else set()
        )
        ids |= {self.made.endpoint_id} if self.made.endpoint_id else set()
        for endpoint_id in sorted(ids):
            ec2.delete_instance_connect_endpoint(InstanceConnectEndpointId=endpoint_id)

        def gone() -> bool:
            left = ec2.describe_instance_connect_endpoints(Filters=self.mine())[
                "InstanceConnectEndpoints"
            ]
            return not [e for e in left if e["State"] != "delete-complete"]

        if ids:
            self.wait(gone, self.options.cleanup_timeout, "the endpoint is still there")
        self.made.endpoint_id = None
        return f"{', '.join(sorted(ids))} deleted" if ids else ""

    def _delete_key_pair(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        names = {k["KeyName"] for k in ec2.describe_key_pairs(Filters=self.mine())["KeyPairs"]}
        names |= {self.made.key_name} if self.made.key_name else set()
        for name in sorted(names):
            ec2.delete_key_pair(KeyName=name)
        self.made.key_name = None
        return f"{', '.join(sorted(names))} deleted" if names else ""

    def _delete_security_group(self) -> str:
        if not self.made.creating:
            return ""
        ec2 = self.client("ec2")
        groups = [
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=self.mine())["SecurityGroups"]
        ]
        group = self.made.security_group_id or (groups[0] if groups else None)
        if not group:
            return ""

        def deleted() -> bool:
            try:
                ec2.delete_security_group(GroupId=group)
            except ClientError as error:
                # The terminated instance's network interface holds it for a while.
                if error.response.get("Error", {}).get("Code") == "DependencyViolation":
                    return False
                raise
            return True

        self.wait(deleted, self.options.cleanup_timeout, f"{group} is still in use")
        self.made.security_group_id = None
        return f"{group} deleted"

    def _delete_backups(self) -> str:
        """The workflow starts its backup and moves on: an AMI or snapshot still pending is
        waited for, since its snapshots cannot be deleted while the AMI is being made."""
        if not self.made.executions:
            return ""
        ec2 = self.client("ec2")
        made_by_run = [{"Name": f"tag:{EXECUTION_TAG}", "Values": self.made.executions}]
        images: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []

        def settled() -> bool:
            images[:] = ec2.describe_images(Owners=["self"], Filters=made_by_run)["Images"]
            snapshots[:] = ec2.describe_snapshots(OwnerIds=["self"], Filters=made_by_run)[
                "Snapshots"
            ]
            return not any(i["State"] == "pending" for i in images) and not any(
                s["State"] == "pending" for s in snapshots
            )

        self.wait(settled, self.options.cleanup_timeout, "a backup of the run is still pending")
        deleted: list[str] = []
        for image in images:
            ec2.deregister_image(ImageId=image["ImageId"])
            deleted.append(image["ImageId"])
            for mapping in image.get("BlockDeviceMappings", []):
                snapshot = mapping.get("Ebs", {}).get("SnapshotId")
                if snapshot:
                    ec2.delete_snapshot(SnapshotId=snapshot)
                    deleted.append(snapshot)
        for snapshot in snapshots:
            if snapshot["SnapshotId"] not in deleted:
                ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
                deleted.append(snapshot["SnapshotId"])
        return f"deleted {', '.join(deleted)}" if deleted else ""

    def _delete_parameters(self) -> str:
        ssm = self.client("ssm")
        names = self._parameters()
        for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
            ssm.delete_parameters(Names=names[start : start + 10])
        return f"deleted {', '.join(names)}" if names else ""

    def _parameters(self) -> list[str]:
        instance_id = self.made.instance_id
        if not instance_id:
            return []
        ssm = self.client("ssm")
        names = []
        key = key_parameter(instance_id)
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            names.append(ssm.get_parameter(Name=key)["Parameter"]["Name"])
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=f"{OWN_PARAMETERS}/{instance_id}", Recursive=True
        ):
            names += [p["Name"] for p in page["Parameters"]]
        return names

    def leftovers(self) -> list[str]:
        """What this run made that still exists, each with the command that deletes it."""
        left: list[str] = []
        if not self.made.creating:
            return left
        try:
            ec2 = self.client("ec2")
            for reservation in ec2.describe_instances(Filters=self.mine())["Reservations"]:
                left += [
                    f"{i['InstanceId']} (aws ec2 terminate-instances --instance-ids "
                    f"{i['InstanceId']})"
                    for i in reservation["Instances"]
                    if i["State"]["Name"] not in ("terminated", "shutting-down")
                ]
            left += [
                f"{v['VolumeId']} (aws ec2 delete-volume --volume-id {v['VolumeId']})"
                for v in ec2.describe_volumes(Filters=self.mine())["Volumes"]
                if v["State"] != "deleting"
            ]
            left += [
                f"{k['KeyName']} (aws ec2 delete-key-pair --key-name {k['KeyName']})"
                for k in ec2.describe_key_pairs(Filters=self.mine())["KeyPairs"]
            ]
            left += [
                f"{g['GroupId']} (aws ec2 delete-security-group --group-id {g['GroupId']})"
                for g in ec2.describe_security_groups(Filters=self.mine())["SecurityGroups"]
            ]
            if self.made.executions:
                made_by_run = [{"Name": f"tag:{EXECUTION_TAG}", "Values": self.made.executions}]
                left += [
                    f"{i['ImageId']} (aws ec2 deregister-image --image-id {i['ImageId']})"
                    for i in ec2.describe_images(Owners=["self"], Filters=made_by_run)["Images"]
                ]
                left += [
                    f"{s['SnapshotId']} (aws ec2 delete-snapshot --snapshot-id {s['SnapshotId']})"
                    for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=made_by_run)[
                        "Snapshots"
                    ]
                ]
            left += [f"{n} (aws ssm delete-parameter --name {n})" for n in self._parameters()]
        except Exception as error:  # noqa: BLE001 - the report must still print
            left.append(
                f"unknown: could not list what is left ({explain(error, 'check')}); "
                f"look for tag {ACCEPTANCE_TAG}={self.run_id}"
            )
        return left
