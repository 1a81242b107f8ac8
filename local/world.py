"""The scenario's world in moto: its instances built from the scenario, and the snapshot of
everything a run may have changed (instances, leftovers, parameters, keys, images, locks) that
the engine's report shows before and after an execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lambdas.logic.inflight import CLOSED
from lambdas.names import (
    EXECUTION_TAG,
    LOCK_KEY,
    OWN_PARAMETERS,
    REPLACED_BY_TAG,
    breaker_key,
    in_flight_key,
    resource_name,
)
from local import emulator, locations
from local.emulator import SsmWorld
from local.locations import HOME, Location
from local.network import give_default_vpc_its_gateway
from local.scenario import Scenario
from local.stack_twin import LOCK_TABLE, NOTIFY_TOPIC, linux_image
from local.volumes import build_linux_tree, build_windows_tree, read_authorized_keys


@dataclass
class World:
    """The scenario's instances, by the scenario's names."""

    scenario: Scenario
    ssm_world: SsmWorld
    # Scenario name -> instance ID, and -> its root volume's ID.
    ids: dict[str, str] = field(default_factory=dict)
    root_volumes: dict[str, str] = field(default_factory=dict)

    def location_of(self, name: str) -> Location:
        """Where the scenario puts an instance (default: the engine's own account and Region)."""
        spec = self.scenario.instances[name]
        return Location(spec.get("account", HOME.account), spec.get("region", HOME.region))

    def locations(self) -> list[Location]:
        """Every location the world uses, the engine's own first."""
        return list(dict.fromkeys([HOME, *(self.location_of(n) for n in self.scenario.instances)]))

    def build(self, workdir: Path) -> None:
        """Launch the scenario's instances, each in its account and Region."""
        for where in self.locations():
            give_default_vpc_its_gateway(locations.client("ec2", where))
        for name in self.scenario.instances:
            with locations.at(self.location_of(name)):
                self._launch(name, workdir)

    def _launch(self, name: str, workdir: Path) -> None:
        """One instance, with its root volume's directory tree."""
        where = locations.current()
        ec2 = locations.client("ec2", where)
        backend = emulator.ec2_backend()
        image_id = linux_image("x86_64")
        spec = self.scenario.instances[name]
        zone = spec.get("availability_zone", f"{where.region}a")
        subnet = ec2.describe_subnets(
            Filters=[
                {"Name": "availability-zone", "Values": [zone]},
                {"Name": "default-for-az", "Values": ["true"]},
            ]
        )["Subnets"][0]
        tags = [{"Key": "Name", "Value": name}] + [
            {"Key": k, "Value": v} for k, v in spec.get("tags", {}).items()
        ]
        # Every instance was launched with a key pair, the one its owner lost.
        key_name = ec2.create_key_pair(KeyName=f"{name}-lost-key")["KeyName"]
        instance_id = ec2.run_instances(
            ImageId=image_id,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet["SubnetId"],
            KeyName=key_name,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]["InstanceId"]
        self.ids[name] = instance_id
        instance = backend.get_instance(instance_id)
        root_device = spec.get("root_device", "/dev/xvda")
        volume_id = instance.block_device_mapping["/dev/sda1"].volume_id
        if root_device != "/dev/sda1":
            # The world's instance boots from its AMI's root device name.
            backend.detach_volume(volume_id, instance_id, "/dev/sda1")
            backend.attach_volume(volume_id, instance_id, root_device, True)
            instance.root_device_name = root_device
        instance.root_device_type = spec.get("root_device_type", "ebs")
        instance.platform = "windows" if spec.get("platform") == "windows" else None
        self.root_volumes[name] = volume_id
        if spec.get("encrypted"):
            _encrypt(volume_id, spec.get("kms_key_state", "Enabled"), where)
        if spec.get("ssm"):
            self.ssm_world.agent_instances.add(instance_id)
        tree = workdir / "volumes" / volume_id
        tree.mkdir(parents=True)
        if spec.get("platform", "linux") == "linux":
            build_linux_tree(tree, spec.get("volume", {}))
        else:
            build_windows_tree(tree, spec.get("volume", {}))
        self.ssm_world.volume_trees[volume_id] = tree
        state = spec.get("state", "running")
        if state == "stopped":
            ec2.stop_instances(InstanceIds=[instance_id])
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=[instance_id])
        elif state in ("pending", "stopping"):
            instance._state.name = state

    def snapshot(self, execution_names: list[str]) -> dict[str, Any]:
        """The world now; leftovers, images and backups are those of these executions (the
        first one's images are listed by name and tags)."""
        from moto.ec2.models import ec2_backends

        instances = {}
        addresses: dict[str, dict[str, Any]] = {}
        reboots: dict[str, int] = {}
        for name, instance_id in self.ids.items():
            backend = ec2_backends[self.location_of(name).account][self.location_of(name).region]
            instance = backend.get_instance(instance_id)
            # A terminated instance's root volume is gone with it.
            volume = backend.volumes.get(self.root_volumes[name])
            attachment = volume.attachment if volume else None
            at_root = instance.block_device_mapping.get(instance.root_device_name)
            instances[name] = {
                "id": instance_id,
                "state": instance.state,
                # The volume it was launched with; "booting_from": the one at its root device
                # now (another after a root volume replacement, None while it has none).
                "root_volume_id": self.root_volumes[name],
                "root_attached_to": attachment.instance.id if attachment else None,
                "root_attached_device": attachment.device if attachment else None,
                "booting_from": at_root.volume_id if at_root else None,
            }
            # Apart from `instances`: a stop and start changes the public IP, and runs that
            # put an instance back as it was still differ in these.
            addresses[name] = {
                "public_ip": instance.public_ip,
                "network_interfaces": sorted(nic.id for nic in instance.nics.values()),
            }
            reboots[name] = self.ssm_world.ebs.reboots.get(instance_id, 0)
        parameters = {}
        # Every location's (an instance's key is in its own account and Region).
        for where in self.locations():
            paginator = locations.client("ssm", where).get_paginator("get_parameters_by_path")
            for page in paginator.paginate(Path="/", Recursive=True, WithDecryption=True):
                for parameter in page["Parameters"]:
                    parameters[parameter["Name"]] = {
                        "type": parameter["Type"],
                        "value": parameter["Value"],
                    }
        authorized = {}
        for name, spec in self.scenario.instances.items():
            if spec.get("platform", "linux") == "linux":
                # What the instance boots from: its original volume, or what replaced it.
                volume_id = instances[name]["booting_from"] or self.root_volumes[name]
                tree = self.ssm_world.volume_trees[volume_id]
                authorized[name] = read_authorized_keys(tree, spec.get("volume", {}))
        tag_values = [resource_name(name) for name in execution_names]
        booting: set[str] = {
            str(i["booting_from"]) for i in instances.values() if i["booting_from"]
        }
        ec2 = locations.client("ec2")
        ssm = locations.client("ssm")
        elsewhere = [where for where in self.locations() if where != HOME]
        leftovers = _leftovers(ec2, ssm, tag_values, booting)
        # The lock table read once per location: its locks, breakers and in-flight items.
        home_items = _table_items()
        locks = _locks(home_items)
        open_marks = _open_marks(home_items)
        for where in elsewhere:
            leftovers += _leftovers(
                locations.client("ec2", where), locations.client("ssm", where), tag_values, booting
            )
            items = _table_items(where)
            locks.update(_locks(items))
            open_marks += _open_marks(items)
        snapshot = {
            "instances": instances,
            "addresses": addresses,
            "reboots": reboots,
            "leftovers": leftovers,
            "kept_root_volumes": _kept_root_volumes(ec2),
            "parameters": parameters,
            "authorized_keys": authorized,
            **_images_and_backups(ec2, tag_values, resource_name(execution_names[0])),
            "locks": locks,
            "open_in_flight_marks": open_marks,
            "breakers": _breakers(home_items),
            "notifications": _notifications(),
        }
        if elsewhere:
            # Backups made in other locations (the home's are in `backups`).
            snapshot["backups_elsewhere"] = {
                str(where): _images_and_backups(
                    locations.client("ec2", where), tag_values, resource_name(execution_names[0])
                )["backups"]
                for where in elsewhere
            }
            snapshot["instance_locations"] = {
                name: str(self.location_of(name)) for name in self.ids
            }
        return snapshot


def _json_value(value: Any) -> str:
    """History times as ISO 8601 (2026-11-30T07:41:00.123000+00:00), not str()'s space form."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def report(
    described: dict[str, Any],
    events: list[dict[str, Any]],
    api_calls: dict[str, int],
    world: dict[str, Any],
) -> dict[str, Any]:
    """An ended execution as the engine reports it: outcome, history, calls, world after."""
    output = described.get("output")
    return {
        "status": described["status"],
        "error": described.get("error"),
        "cause": described.get("cause"),
        "output": json.loads(output) if output else None,
        "transitions": transitions(events),
        "api_calls": dict(sorted(api_calls.items())),
        "history": json.loads(json.dumps(events, default=_json_value)),
        "world": world,
    }


def transitions(events: list[dict[str, Any]]) -> int:
    """State transitions as Step Functions bills them: every state entered, every retry."""
    entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
    attempts = sum(1 for e in events if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled"))
    tasks = sum(1 for e in events if e["type"] == "TaskStateEntered")
    return entered + max(0, attempts - tasks)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events


def _encrypt(volume_id: str, key_state: str, where: Location = HOME) -> None:
    kms = locations.client("kms", where)
    key = kms.create_key(Description="customer key of the instance's root volume")
    key_id = key["KeyMetadata"]["KeyId"]
    if key_state == "Disabled":
        kms.disable_key(KeyId=key_id)
    elif key_state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    volume = emulator.ec2_backend().get_volume(volume_id)
    volume.encrypted = True
    volume.kms_key_id = key["KeyMetadata"]["Arn"]


def _table_items(where: Location = HOME) -> list[dict[str, Any]]:
    table = locations.client("dynamodb", where)
    return list(table.scan(TableName=LOCK_TABLE, ConsistentRead=True)["Items"])


def _locks(items: list[dict[str, Any]]) -> dict[str, str]:
    """Instance ID -> execution ARN of every lock held in a location's table items."""
    return {
        i[LOCK_KEY]["S"]: i.get("ExecutionArn", {}).get("S", "")
        for i in items
        if not i[LOCK_KEY]["S"].startswith((breaker_key(""), in_flight_key("")))
    }


def _open_marks(items: list[dict[str, Any]]) -> list[str]:
    """The in-flight items (lambdas/logic/inflight.py) no failure path or ending has closed:
    a run that ended leaves none (a sealed one waits for the table's TTL)."""
    return [
        i[LOCK_KEY]["S"]
        for i in items
        if i[LOCK_KEY]["S"].startswith(in_flight_key("")) and CLOSED not in i
    ]


def _breakers(items: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Instance ID -> its circuit breaker (lambdas/logic/breaker.py): status, alarm, execution;
    from the home table's items."""
    prefix = breaker_key("")
    return {
        i[LOCK_KEY]["S"].removeprefix(prefix): {
            "status": i["Status"]["S"],
            "alarm": i["Alarm"]["S"],
            "execution_arn": i["ExecutionArn"]["S"],
            "started_at": i["StartedAt"]["N"],
        }
        for i in items
        if i[LOCK_KEY]["S"].startswith(prefix)
    }


def _notifications() -> list[dict[str, str]]:
    """What the stack's topic was sent, in order: subject and message (moto's SNS keeps them)."""
    from moto.sns.models import sns_backends

    topics = sns_backends[HOME.account][HOME.region].topics
    topic = topics.get(f"arn:aws:sns:{HOME.region}:{HOME.account}:{NOTIFY_TOPIC}")
    sent = topic.sent_notifications if topic else []
    return [{"subject": str(subject), "message": str(message)} for _, message, subject, *_ in sent]


def _kept_root_volumes(ec2: Any) -> dict[str, dict[str, Any]]:
    """Old root volumes a replace-root run kept on purpose: their state and tags."""
    found = ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": [REPLACED_BY_TAG]}])
    return {
        v["VolumeId"]: {
            "state": v["State"],
            "tags": {t["Key"]: t["Value"] for t in v.get("Tags", [])},
        }
        for v in found["Volumes"]
    }


def _leftovers(ec2: Any, ssm: Any, tag_values: list[str], booting: set[str]) -> list[str]:
    tag = [{"Name": f"tag:{EXECUTION_TAG}", "Values": tag_values}]
    left: list[str] = []
    for reservation in ec2.describe_instances(Filters=tag)["Reservations"]:
        left += [
            i["InstanceId"] for i in reservation["Instances"] if i["State"]["Name"] != "terminated"
        ]
    left += [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]
    left += [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]]
    left += [
        g["InternetGatewayId"]
        for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]
    ]
    left += [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tag)["RouteTables"]]
    left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]]
    # A volume a run made that an instance now boots from (replace-root's copy) is not left.
    left += [
        v["VolumeId"]
        for v in ec2.describe_volumes(Filters=tag)["Volumes"]
        if v["VolumeId"] not in booting
    ]
    left += [k["KeyPairId"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]]
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=OWN_PARAMETERS, Recursive=True
    ):
        left += [p["Name"] for p in page["Parameters"] if "/pending/" in p["Name"]]
    return left


def _tagged(ec2: Any, resource_type: str, tag_values: list[str]) -> list[str]:
    """IDs of the resources of that type tagged with these executions. DescribeTags, not a
    tag-filtered DescribeImages/DescribeSnapshots: moto walks its ~1,300 public images
    and snapshots for those, which made each report cost a third of a second."""
    filters = [
        {"Name": "key", "Values": [EXECUTION_TAG]},
        {"Name": "value", "Values": tag_values},
        {"Name": "resource-type", "Values": [resource_type]},
    ]
    return [t["ResourceId"] for t in ec2.describe_tags(Filters=filters)["Tags"]]


def _existing(ec2: Any, resource_type: str, tag_values: list[str]) -> list[dict[str, Any]]:
    """Those of them that still exist (moto keeps a deleted resource's tags; an ID
    filter, unlike ImageIds/SnapshotIds, does not fail on an ID that is gone)."""
    ids = _tagged(ec2, resource_type, tag_values)
    if not ids:
        return []
    if resource_type == "image":
        return list(ec2.describe_images(Filters=[{"Name": "image-id", "Values": ids}])["Images"])
    return list(
        ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": ids}])["Snapshots"]
    )


def _images_and_backups(ec2: Any, tag_values: list[str], first: str) -> dict[str, Any]:
    """`images`: the AMIs the first execution made, backup and password-enabled, with
    name and tags. `backups`: the AMIs and standalone snapshots of all its copies."""
    images = _existing(ec2, "image", tag_values)
    snapshots = _existing(ec2, "snapshot", tag_values)
    made_by_first = {}
    for image in images:
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        if tags.get(EXECUTION_TAG) == first:
            made_by_first[image["ImageId"]] = {"name": image["Name"], "tags": tags}
    return {
        "backups": {
            "images": [i["ImageId"] for i in images],
            "snapshots": [
                s["SnapshotId"]
                for s in snapshots
                if not s.get("Description", "").startswith("Created by CreateImage")
            ],
        },
        "images": made_by_first,
    }
