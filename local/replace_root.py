"""EC2 CopyVolumes and root volume replacement with a given volume (CreateReplaceRootVolumeTask,
DescribeReplaceRootVolumeTasks), which moto 5.2.5 lacks, emulated after AWS's API reference.

Sources (each refusal below names the one it follows):
- CopyVolumes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyVolumes.html
  (a crash-consistent, point-in-time copy in the same Availability Zone; usable once
  `available`; Size >= the source's; VolumeType defaults to gp2; Iops required for io1/io2,
  optional for gp3, refused for the others; Throughput gp3 only; Multi-Attach io1/io2 only; an
  encrypted source always gives an encrypted copy).
- CreateReplaceRootVolumeTask:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateReplaceRootVolumeTask.html
  and the user guide's "Replace the root volume for an Amazon EC2 instance without stopping it"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/replace-root.html): the instance must be
  `running` with an EBS root; the given volume must be in the instance's zone, `available`,
  attached to nothing, encrypted if the original is; the instance reboots in place and keeps
  its network interfaces, IP addresses and instance store; the original root volume is kept
  (detached) unless DeleteReplacedRootVolume is true. Not supported: instance-store roots, bare
  metal instances other than Mac, instances with AWS Marketplace product codes.
- ReplaceRootVolumeTask.TaskState:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceRootVolumeTask.html
  pending, in-progress, then succeeded; or failing then failed (the original root still
  attached), or failing-detached then failed-detached (the instance has no root volume).

Time passes here by being asked: a copy answers `creating` to the first DescribeVolumes after
it is made, and each DescribeReplaceRootVolumeTasks moves a task one state on.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A copy's DescribeVolumes answers while `creating`, before it is `available`.
COPY_DESCRIBES_CREATING = 1
IOPS_REQUIRED = ("io1", "io2")
IOPS_ALLOWED = ("io1", "io2", "gp3")
# How a task ends: "succeeded" (AWS's usual), or a failure a test asks for.
OUTCOMES = ("succeeded", "failed", "failed-detached")
_STEPS = {
    "succeeded": ("pending", "in-progress", "succeeded"),
    "failed": ("pending", "in-progress", "failing", "failed"),
    "failed-detached": ("pending", "in-progress", "failing-detached", "failed-detached"),
}
FINAL_STATES = ("succeeded", "failed", "failed-detached")


@dataclass
class ReplaceTask:
    task_id: str
    instance_id: str
    volume_id: str
    delete_replaced: bool
    tags: dict[str, str]
    steps: list[str]
    start_time: str
    complete_time: str | None = None
    # The root volume the task detached (kept unless delete_replaced).
    replaced_volume_id: str | None = None

    @property
    def state(self) -> str:
        return self.steps[0]

    def described(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "ReplaceRootVolumeTaskId": self.task_id,
            "InstanceId": self.instance_id,
            "TaskState": self.state,
            "StartTime": self.start_time,
            "DeleteReplacedRootVolume": self.delete_replaced,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
        }
        if self.complete_time:
            found["CompleteTime"] = self.complete_time
        return found


@dataclass
class EbsWorld:
    """What EC2 knows here beyond moto: copies still being made, replace-root tasks, reboots."""

    # The directory tree that is each volume's data (shared with SsmWorld.volume_trees).
    volume_trees: dict[str, Path] = field(default_factory=dict)
    creating: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, ReplaceTask] = field(default_factory=dict)
    reboots: dict[str, int] = field(default_factory=dict)
    # Instance ID -> how its next task ends (a test's fault); "succeeded" when absent.
    outcomes: dict[str, str] = field(default_factory=dict)
    # (operation, ClientToken) -> what the first call made: a retry gets it back.
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def _now() -> str:
    # ISO 8601 as EC2 writes StartTime and CompleteTime, to the millisecond: a run here reboots
    # in well under a second, and its downtime must not round to 0.
    return datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _refuse(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _tags(response: Any, resource_type: str) -> dict[str, str]:
    return dict(response._parse_tag_specification().get(resource_type, {}))


def _copy_type(params: dict[str, Any], source: Any) -> tuple[str, int | None, int | None]:
    """The copy's type, IOPS and throughput, refused as AWS refuses them."""
    volume_type = params.get("VolumeType") or "gp2"
    iops, throughput = params.get("Iops"), params.get("Throughput")
    if volume_type in IOPS_REQUIRED and not iops:
        raise _refuse("InvalidParameterValue", f"Iops is required for {volume_type} volumes")
    if iops and volume_type not in IOPS_ALLOWED:
        raise _refuse(
            "InvalidParameterCombination", f"Iops is not supported for {volume_type} volumes"
        )
    if throughput and volume_type != "gp3":
        raise _refuse("InvalidParameterCombination", "Throughput is supported for gp3 only")
    if params.get("MultiAttachEnabled") and volume_type not in IOPS_REQUIRED:
        raise _refuse("InvalidParameterCombination", "Multi-Attach is for io1 and io2 only")
    return volume_type, (int(iops) if iops else None), (int(throughput) if throughput else None)


def copy_volumes(ebs: EbsWorld) -> Callable[[Any], Any]:
    """CopyVolumes: a new volume in the source's zone holding the source's data as it is at
    the call, `creating` at first; an encrypted source gives an encrypted copy."""
    from moto.core.responses import ActionResult

    def copy(self: Any) -> Any:
        backend = self.ec2_backend
        token = ("CopyVolumes", self._get_param("ClientToken") or uuid.uuid4().hex)
        with ebs.lock:
            if token in ebs.tokens:
                # Idempotency (EC2 "Ensure idempotency"): the same token, the same copy.
                return ActionResult({"Volumes": [backend.get_volume(ebs.tokens[token])]})
        source = backend.get_volume(self._get_param("SourceVolumeId"))
        params = {
            k: self._get_param(k)
            for k in ("VolumeType", "Iops", "Throughput", "MultiAttachEnabled", "Size")
        }
        size = int(params["Size"] or source.size)
        if size < source.size:
            raise _refuse(
                "InvalidParameterValue",
                f"The size of the volume copy ({size} GiB) must be equal to or greater than "
                f"the size of the source volume ({source.size} GiB)",
            )
        volume_type, iops, throughput = _copy_type(params, source)
        encrypted = bool(source.encrypted or self._get_bool_param("Encrypted", False))
        kms_key_id = self._get_param("KmsKeyId") or (source.kms_key_id if encrypted else None)
        self.error_on_dryrun()
        with ebs.lock:
            copy = backend.create_volume(
                size=size,
                zone_name=source.zone.name,
                encrypted=encrypted,
                kms_key_id=kms_key_id,
                volume_type=volume_type,
                iops=iops,
                throughput=throughput,
                multi_attach_enabled=params["MultiAttachEnabled"],
            )
            copy.source_volume_id = source.id
            copy.add_tags(_tags(self, "volume"))
            tree = ebs.volume_trees.get(source.id)
            if tree is not None:
                # Point in time: the source's files as they are now, the copy's from here on.
                target = tree.parent / copy.id
                shutil.copytree(tree, target, symlinks=True)
                ebs.volume_trees[copy.id] = target
            ebs.creating[copy.id] = COPY_DESCRIBES_CREATING
            ebs.tokens[token] = copy.id
        return ActionResult({"Volumes": [copy]})

    return copy


def _check_target(backend: Any, instance: Any) -> Any:
    """The instance as CreateReplaceRootVolumeTask requires it; its current root volume."""
    if instance.state != "running":
        raise _refuse(
            "IncorrectInstanceState",
            f"The instance '{instance.id}' is not in the 'running' state; root volume "
            "replacement needs a running instance",
        )
    if getattr(instance, "root_device_type", "ebs") != "ebs":
        raise _refuse(
            "UnsupportedOperation",
            f"The instance '{instance.id}' has an instance store root volume",
        )
    instance_type = str(instance.instance_type)
    if ".metal" in instance_type and not instance_type.startswith("mac"):
        raise _refuse(
            "UnsupportedOperation",
            f"Root volume replacement is not supported for bare metal instance type "
            f"{instance_type}",
        )
    if getattr(instance, "product_codes", None):
        raise _refuse(
            "UnsupportedOperation",
            f"The instance '{instance.id}' has AWS Marketplace product codes",
        )
    mapping = instance.block_device_mapping.get(instance.root_device_name)
    if mapping is None:
        raise _refuse("IncorrectState", f"The instance '{instance.id}' has no root volume attached")
    return backend.get_volume(mapping.volume_id)


def _check_replacement(
    ebs: EbsWorld, backend: Any, instance: Any, original: Any, volume_id: str
) -> Any:
    volume = backend.get_volume(volume_id)
    zone = instance.placement.zone
    if volume.zone.name != zone:
        raise _refuse(
            "InvalidParameterValue",
            f"The volume '{volume_id}' is in {volume.zone.name}, not in the instance's "
            f"Availability Zone {zone}",
        )
    if volume.id in ebs.creating or volume.attachment is not None:
        state = "creating" if volume.id in ebs.creating else "in-use"
        raise _refuse(
            "IncorrectState",
            f"The volume '{volume_id}' is '{state}'; the replacement must be 'available'",
        )
    if original.encrypted and not volume.encrypted:
        raise _refuse(
            "InvalidParameterValue",
            f"The original root volume is encrypted; the volume '{volume_id}' must be too",
        )
    if volume.size < original.size:
        raise _refuse(
            "InvalidParameterValue",
            f"The volume '{volume_id}' ({volume.size} GiB) is smaller than the root volume "
            f"({original.size} GiB)",
        )
    return volume


def create_replace_root_volume_task(ebs: EbsWorld) -> Callable[[Any], Any]:
    """CreateReplaceRootVolumeTask with VolumeId (the only source ResetAccess uses; ImageId and
    SnapshotId are not emulated and fail loudly)."""
    from moto.core.responses import ActionResult

    def create(self: Any) -> Any:
        backend = self.ec2_backend
        volume_id = self._get_param("VolumeId")
        if self._get_param("ImageId") or self._get_param("SnapshotId"):
            if volume_id:
                raise _refuse(
                    "InvalidParameterCombination",
                    "Specify at most one of ImageId, SnapshotId and VolumeId",
                )
            raise NotImplementedError("the local engine emulates root replacement by VolumeId")
        if not volume_id:
            raise NotImplementedError("the local engine emulates root replacement by VolumeId")
        instance = backend.get_instance(self._get_param("InstanceId"))
        token = ("CreateReplaceRootVolumeTask", self._get_param("ClientToken") or uuid.uuid4().hex)
        with ebs.lock:
            if token in ebs.tokens:
                task = ebs.tasks[ebs.tokens[token]]
                return ActionResult({"ReplaceRootVolumeTask": task.described()})
            original = _check_target(backend, instance)
            _check_replacement(ebs, backend, instance, original, volume_id)
            busy = [
                t.task_id
                for t in ebs.tasks.values()
                if t.instance_id == instance.id and t.state not in FINAL_STATES
            ]
            if busy:
                raise _refuse(
                    "IncorrectState",
                    f"The instance '{instance.id}' already has a root volume replacement task "
                    f"in progress ({busy[0]})",
                )
            self.error_on_dryrun()
            outcome = ebs.outcomes.pop(instance.id, "succeeded")
            task = ReplaceTask(
                task_id=f"replacevol-{uuid.uuid4().hex[:17]}",
                instance_id=instance.id,
                volume_id=volume_id,
                delete_replaced=self._get_bool_param("DeleteReplacedRootVolume", False),
                tags=_tags(self, "replace-root-volume-task"),
                steps=list(_STEPS[outcome]),
                start_time=_now(),
            )
            ebs.tasks[task.task_id] = task
            ebs.tokens[token] = task.task_id
        return ActionResult({"ReplaceRootVolumeTask": task.described()})

    return create


def _advance(ebs: EbsWorld, backend: Any, task: ReplaceTask) -> None:
    """One state on; entering failing-detached or succeeded detaches the old root volume
    (and on success attaches the replacement in its place and reboots the instance)."""
    if len(task.steps) == 1:
        return
    task.steps.pop(0)
    if task.state in FINAL_STATES:
        task.complete_time = _now()
    if task.state not in ("failing-detached", "succeeded"):
        return
    instance = backend.get_instance(task.instance_id)
    device = instance.root_device_name
    old = instance.block_device_mapping.get(device)
    if old is None or task.replaced_volume_id is not None:
        return
    task.replaced_volume_id = old.volume_id
    backend.detach_volume(old.volume_id, instance.id, device)
    if task.state == "succeeded":
        backend.attach_volume(task.volume_id, instance.id, device, bool(old.delete_on_termination))
        # The instance reboots in place: never stopped, same host, same interfaces.
        ebs.reboots[instance.id] = ebs.reboots.get(instance.id, 0) + 1
        if task.delete_replaced:
            backend.delete_volume(task.replaced_volume_id)


def describe_replace_root_volume_tasks(ebs: EbsWorld) -> Callable[[Any], Any]:
    from moto.core.responses import ActionResult

    def describe(self: Any) -> Any:
        backend = self.ec2_backend
        wanted = self._get_param("ReplaceRootVolumeTaskIds", []) or []
        instances: set[str] | None = None
        for item in self._get_param("Filters", []) or []:
            if item.get("Name") != "instance-id":
                raise _refuse(
                    "InvalidParameterValue", f"The filter '{item.get('Name')}' is invalid"
                )
            instances = set(item.get("Values", []))
        self.error_on_dryrun()
        with ebs.lock:
            unknown = [t for t in wanted if t not in ebs.tasks]
            if unknown:
                raise _refuse(
                    "InvalidReplaceRootVolumeTaskId.NotFound",
                    f"The replace root volume task ID '{unknown[0]}' does not exist",
                )
            found = []
            for task in ebs.tasks.values():
                if (wanted and task.task_id not in wanted) or (
                    instances is not None and task.instance_id not in instances
                ):
                    continue
                _advance(ebs, backend, task)
                found.append(task.described())
        return ActionResult({"ReplaceRootVolumeTasks": found})

    return describe


def _volume_status(ebs: EbsWorld, original: Any) -> property:
    def status(volume: Any) -> str:
        if volume.id in ebs.creating:
            return "creating"
        return str(original.fget(volume))

    return property(status)


def _describe_volumes(ebs: EbsWorld, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def describe(self: Any) -> Any:
        named = set(self._get_param("VolumeIds", []) or [])
        with ebs.lock:
            # A copy gets closer to available each time it is asked about (by ID or filter);
            # counted before the answer, which moto serializes after this returns.
            for volume_id in [v for v in ebs.creating if not named or v in named]:
                if ebs.creating[volume_id] <= 0:
                    del ebs.creating[volume_id]
                else:
                    ebs.creating[volume_id] -= 1
        return original(self)

    return describe


def _attach_volume(ebs: EbsWorld, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """AWS: a volume attaches once it is `available` (CopyVolumes: "can be attached ... once
    it reaches the available state")."""

    def attach(self: Any) -> Any:
        volume_id = self._get_param("VolumeId")
        if volume_id in ebs.creating:
            raise _refuse("IncorrectState", f"vol '{volume_id}' is in the 'creating' state.")
        return original(self)

    return attach


def _detach_volume(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """AWS (DetachVolume): "If an Amazon EBS volume is the root device of an instance, it
    can't be detached while the instance is running. To detach the root volume, stop the
    instance first." moto detaches it; only a replacement task may take a running root."""

    def detach(self: Any) -> Any:
        volume = self.ec2_backend.get_volume(self._get_param("VolumeId"))
        attached = volume.attachment
        if attached is not None:
            instance = attached.instance
            if attached.device == instance.root_device_name and instance.state == "running":
                raise _refuse(
                    "IncorrectState",
                    f"Unable to detach root volume '{volume.id}' from instance "
                    f"'{instance.id}' while it is running",
                )
        return original(self)

    return detach


@contextlib.contextmanager
def served(ebs: EbsWorld) -> Iterator[None]:
    from unittest import mock

    from moto.ec2.models.elastic_block_store import Volume
    from moto.ec2.responses import EC2Response

    with contextlib.ExitStack() as stack:
        for name, make in (
            ("copy_volumes", copy_volumes),
            ("create_replace_root_volume_task", create_replace_root_volume_task),
            ("describe_replace_root_volume_tasks", describe_replace_root_volume_tasks),
        ):
            stack.enter_context(mock.patch.object(EC2Response, name, make(ebs), create=True))
        stack.enter_context(
            mock.patch.object(
                EC2Response,
                "describe_volumes",
                _describe_volumes(ebs, EC2Response.describe_volumes),
            )
        )
        stack.enter_context(
            mock.patch.object(
                EC2Response, "attach_volume", _attach_volume(ebs, EC2Response.attach_volume)
            )
        )
        stack.enter_context(
            mock.patch.object(
                EC2Response, "detach_volume", _detach_volume(EC2Response.detach_volume)
            )
        )
        stack.enter_context(mock.patch.object(Volume, "status", _volume_status(ebs, Volume.status)))
        yield
