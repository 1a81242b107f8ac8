"""Preflight: look at the instance, decide how to reset it, and refuse early with no change."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lambdas import timestamps
from lambdas.errors import InvalidInput, Unsupported
from lambdas.logic.helper_type import require_nitro
from lambdas.logic.helper_volume_key import check_ebs_default_key
from lambdas.logic.inputs import Request
from lambdas.logic.reachability import check_helper_subnet
from lambdas.names import (
    OPT_IN_TAG,
    REPLACED_BY_TAG,
    WINDOWS_TOOL_COMMAND,
    WINDOWS_TOOL_DOCUMENT,
    key_parameter,
    password_parameter,
    ubuntu_ami_parameter,
)
from lambdas.plan import DryRunPlan, Mode, Plan, PlanHeader, Platform, Subnet

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import InstanceBlockDeviceMappingTypeDef, InstanceTypeDef
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_ssm import SSMClient

UNUSABLE_KEY_STATES = ("Disabled", "PendingDeletion", "PendingImport", "Unavailable")


def describe_target(ec2: EC2Client, instance_id: str) -> InstanceTypeDef:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        if code.startswith("InvalidInstanceID"):
            raise InvalidInput(
                f"InstanceId: no instance {instance_id} in this account and Region"
            ) from None
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise InvalidInput(f"InstanceId: no instance {instance_id} in this account and Region")
    return instances[0]


def root_mapping(instance: InstanceTypeDef) -> InstanceBlockDeviceMappingTypeDef:
    root_name = instance.get("RootDeviceName")
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root_name and "Ebs" in mapping:
            return mapping
    raise Unsupported(
        f"InstanceId: {instance['InstanceId']} has no EBS volume attached at its root device "
        f"{root_name}; attach its root volume there first"
    )


def plan_reset(
    request: Request,
    *,
    ec2: EC2Client,
    ssm: SSMClient,
    kms: KMSClient,
    execution: str,
    execution_arn: str,
) -> PlanHeader | Plan:
    """Every check that can refuse the run, then the plan the other phases follow (only its
    header when an alarm's run is skipped)."""
    instance = describe_target(ec2, request.instance_id)
    state = instance["State"]["Name"]
    instance_id = request.instance_id
    _check_state(instance_id, state)

    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    plan: PlanHeader = {
        "InstanceId": instance_id,
        "Execution": execution,
        "ExecutionArn": execution_arn,
        "StartedAt": timestamps.now(),
        "Action": "reset",
        "Notes": list(request.notes),
    }
    if request.from_alarm:
        plan["Alarm"] = request.from_alarm
        if tags.get(OPT_IN_TAG, "").lower() != "true":
            plan["Action"] = "skip"
            plan["Notes"].append(
                f"alarm {request.from_alarm} fired, but {instance_id} has no tag "
                f"{OPT_IN_TAG}=true; nothing was changed"
            )
            return plan

    if request.mode == "replace-root":
        check_replace_root(instance, request)
    platform = _platform(instance, request)

    mapping = root_mapping(instance)
    volume_id = mapping["Ebs"]["VolumeId"]
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    az = instance["Placement"]["AvailabilityZone"]
    kms_key = volume.get("KmsKeyId")
    if volume.get("Encrypted") and kms_key:
        _check_volume_key(kms, kms_key, instance_id, plan["Notes"])

    marketplace = [c.get("ProductCodeId") for c in instance.get("ProductCodes", [])]
    ssm_online = _ssm_online(ssm, instance_id)
    mode = _decide_mode(request, ssm_online, instance_id, platform)
    # Replace-root launches its helper at once, as offline does.
    helper_mode = "offline" if mode == "replace-root" else mode
    if request.mode != "online":
        check_ebs_default_key(ec2, kms, helper_mode, plan["Notes"])
    if mode == "offline" and marketplace:
        raise Unsupported(
            f"InstanceId: {instance_id} carries AWS Marketplace product codes "
            f"({', '.join(filter(None, marketplace))}); EC2 attaches such a root volume only to "
            "a stopped instance, so the helper cannot mount it. Use Mode online with SSM, or "
            "launch a new instance from a backup AMI with a new key pair"
        )

    if (
        platform == "windows"
        and mode == "offline"
        and not instance.get("KeyName")
        and not request.create_password_enabled_ami
    ):
        raise InvalidInput(
            f"CreatePasswordEnabledAmi: {instance_id} has no key pair, so EC2 could not encrypt "
            "its new password for anyone (GetPasswordData); leave CreatePasswordEnabledAmi "
            "true and launch that AMI with a new key pair"
        )
    subnet = _resolve_subnet(ec2, request, instance, az)
    helper_reaches_ssm = check_helper_subnet(ec2, subnet, helper_mode, request.mode, plan["Notes"])
    architecture = _helper_architecture(ec2, request.helper_instance_type)
    backup = request.backup
    if mode in ("online", "replace-root") and backup == "ami":
        # No stop online: an AMI would copy every volume, crash-consistent at best; the root
        # volume's snapshot undoes the one file (or password) an online reset changes.
        backup = "snapshot"
        plan["Notes"].append(
            f"{mode}: the backup is a snapshot of the root volume, taken "
            "without a reboot (an AMI would need a stop to be consistent)"
        )
    linux_key = platform == "linux" and not request.public_key
    # Mode auto: if the online reset fails, the helper path still can (same plan, offline).
    fallback = (
        request.mode == "auto"
        and mode == "online"
        and not marketplace
        and (helper_reaches_ssm)
        and not (
            platform == "windows"
            and not instance.get("KeyName")
            and not request.create_password_enabled_ami
        )
    )
    reset: Plan = {
        **plan,
        "Mode": mode,
        "Platform": platform,
        "InitialState": state,
        "AvailabilityZone": az,
        "RootDeviceName": mapping["DeviceName"],
        "RootVolumeId": volume_id,
        "RootDeleteOnTermination": bool(mapping["Ebs"].get("DeleteOnTermination")),
        "Encrypted": bool(volume.get("Encrypted")),
        "SsmOnline": ssm_online,
        "Subnet": subnet,
        "HelperInstanceType": request.helper_instance_type,
        "HelperAmiParameter": ubuntu_ami_parameter("arm64" if architecture == "arm64" else "amd64"),
        "Backup": backup,
        "PublicKey": request.public_key,
        "KeyType": request.key_type,
        "KeyParameter": key_parameter(instance_id) if linux_key else None,
        "KeyName": instance.get("KeyName"),
        "PasswordParameter": (
            password_parameter(instance_id) if platform == "windows" and mode == "online" else None
        ),
        "CreatePasswordEnabledAmi": (
            request.create_password_enabled_ami and platform == "windows" and mode == "offline"
        ),
        "OfflineFallback": fallback,
        "Fallback": {
            "Mode": "offline",
            "Backup": request.backup,
            "PasswordParameter": None,
            "CreatePasswordEnabledAmi": (
                request.create_password_enabled_ami and platform == "windows"
            ),
        }
        if fallback
        else {},
        "DryRun": request.dry_run,
    }
    if request.dry_run:
        dry_run: DryRunPlan = {**reset, "Action": "dry-run", "Steps": describe_steps(reset)}
        return dry_run
    return reset


def check_replace_root(instance: InstanceTypeDef, request: Request) -> None:
    """Refuse what EC2's root volume replacement does not support (EC2 User Guide, "Replace
    the root volume for an Amazon EC2 instance without stopping it"), or ResetAccess does not."""
    instance_id = request.instance_id
    state = instance["State"]["Name"]
    if state != "running":
        raise InvalidInput(
            f"Mode: replace-root needs {instance_id} running (EC2 replaces the root volume of a "
            f"running instance only); it is {state}. Use Mode offline"
        )
    if instance.get("RootDeviceType") != "ebs":
        raise Unsupported(
            f"InstanceId: {instance_id} has an instance-store root device; EC2 replaces only "
            "EBS root volumes"
        )
    instance_type = str(instance.get("InstanceType", ""))
    if ".metal" in instance_type and not instance_type.startswith("mac"):
        raise Unsupported(
            f"InstanceId: {instance_id} is a bare metal {instance_type}; EC2 does not replace "
            "the root volume of bare metal instances (Mac excepted). Use Mode offline"
        )
    codes = [c.get("ProductCodeId") or "" for c in instance.get("ProductCodes", [])]
    if codes:
        raise Unsupported(
            f"InstanceId: {instance_id} carries AWS Marketplace product codes "
            f"({', '.join(filter(None, codes))}); EC2 does not replace the root volume of such "
            "instances. Use Mode online with SSM"
        )
    if instance.get("Platform", "").lower() == "windows":
        raise InvalidInput(
            f"Mode: replace-root resets Linux instances; {instance_id} runs Windows. Use Mode "
            "offline or online"
        )


def _check_state(instance_id: str, state: str) -> None:
    if state in ("terminated", "shutting-down"):
        raise InvalidInput(f"InstanceId: {instance_id} is {state}; there is nothing to reset")
    if state in ("pending", "stopping"):
        raise InvalidInput(
            f"InstanceId: {instance_id} is {state}; start again once it is running or stopped"
        )


def _platform(instance: InstanceTypeDef, request: Request) -> Platform:
    """linux or windows, once the instance's root device and the request suit a reset."""
    instance_id = request.instance_id
    if instance.get("RootDeviceType") != "ebs":
        raise Unsupported(
            f"InstanceId: {instance_id} has an instance-store root device; its disk cannot be "
            "moved to a helper, and stopping it would erase it"
        )
    platform: Platform = "windows" if instance.get("Platform", "").lower() == "windows" else "linux"
    if platform == "windows" and request.public_key:
        raise InvalidInput(
            f"PublicKey: {instance_id} runs Windows, which gets a new Administrator password, "
            "not an SSH key; leave PublicKey out"
        )
    return platform


def _check_volume_key(kms: KMSClient, key_id: str, instance_id: str, notes: list[str]) -> None:
    try:
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except kms.exceptions.ClientError as error:
        notes.append(
            f"could not read the root volume's KMS key ({error.response['Error']['Code']}); "
            "attaching it to the helper needs kms:CreateGrant on that key"
        )
        return
    if metadata.get("KeyState") in UNUSABLE_KEY_STATES or not metadata.get("Enabled", True):
        raise Unsupported(
            f"InstanceId: the root volume of {instance_id} is encrypted with KMS key "
            f"{metadata.get('KeyId', key_id)}, which is {metadata.get('KeyState')}; the instance "
            "could not start again. Enable the key (or cancel its deletion) first"
        )


def _ssm_online(ssm: SSMClient, instance_id: str) -> bool:
    found = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
    ).get("InstanceInformationList", [])
    return any(info.get("PingStatus") == "Online" for info in found)


def _decide_mode(request: Request, ssm_online: bool, instance_id: str, platform: str) -> Mode:
    if request.mode in ("offline", "replace-root"):
        return "offline" if request.mode == "offline" else "replace-root"
    if request.mode == "online":
        if not ssm_online:
            raise InvalidInput(
                f"Mode: online needs {instance_id} to be managed by SSM (agent running, "
                "instance profile, network to SSM); it is not. Use Mode auto or offline"
            )
        return "online"
    return "online" if ssm_online else "offline"


def _resolve_subnet(ec2: EC2Client, request: Request, instance: InstanceTypeDef, az: str) -> Subnet:
    if request.subnet == "CreateNewVPC":
        return {"Choice": "CreateNewVPC", "SubnetId": None}
    if request.subnet == "SelectedInstanceSubnet":
        subnet_id = instance.get("SubnetId")
        if not subnet_id:
            raise InvalidInput(
                f"SubnetId: {instance['InstanceId']} is in no VPC subnet; use CreateNewVPC"
            )
        return {"Choice": "SelectedInstanceSubnet", "SubnetId": subnet_id}
    try:
        subnets = ec2.describe_subnets(SubnetIds=[request.subnet])["Subnets"]
    except ec2.exceptions.ClientError as error:
        if error.response["Error"]["Code"].startswith("InvalidSubnetID"):
            raise InvalidInput(f"SubnetId: no subnet {request.subnet} in this Region") from None
        raise
    subnet_az = subnets[0]["AvailabilityZone"]
    if subnet_az != az:
        raise InvalidInput(
            f"SubnetId: {request.subnet} is in {subnet_az}, but the instance is in {az}; a "
            "volume attaches only within its Availability Zone"
        )
    return {"Choice": "Given", "SubnetId": request.subnet}


def _helper_architecture(ec2: EC2Client, instance_type: str) -> str:
    try:
        # Any name: EC2 refuses one it does not offer, and so does this check.
        types = ec2.describe_instance_types(
            InstanceTypes=[cast("InstanceTypeType", instance_type)]
        )["InstanceTypes"]
    except ec2.exceptions.ClientError:
        types = []
    if not types:
        raise InvalidInput(
            f"HelperInstanceType: {instance_type} is not an instance type offered in this Region"
        )
    require_nitro(types[0])
    architectures = types[0].get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if "x86_64" in architectures:
        return "x86_64"
    if "arm64" in architectures:
        return "arm64"
    raise InvalidInput(
        f"HelperInstanceType: {instance_type} supports neither x86_64 nor arm64 Ubuntu"
    )


def describe_steps(plan: Plan) -> list[str]:
    """What a real run would do, in order, for DryRun."""
    if plan["Mode"] == "online":
        return _online_steps(plan)
    if plan["Mode"] == "replace-root":
        return _replace_root_steps(plan)
    instance_id = plan["InstanceId"]
    subnet = plan["Subnet"]
    steps = []
    if subnet["Choice"] == "CreateNewVPC":
        steps.append(
            f"create a temporary VPC, subnet and internet gateway in {plan['AvailabilityZone']}"
        )
    else:
        steps.append(f"use subnet {subnet['SubnetId']} for the helper")
    steps.append(
        f"launch a {plan['HelperInstanceType']} Ubuntu 24.04 helper ({plan['HelperAmiParameter']})"
    )
    if plan["InitialState"] == "running":
        steps.append(f"stop {instance_id}")
    if plan["Backup"] != "none":
        steps.append(f"back up {plan['RootVolumeId']} as an {plan['Backup']} (not waited for)")
    steps.append(f"move {plan['RootVolumeId']} from {plan['RootDeviceName']} to the helper")
    steps.append(_change_step(plan))
    steps.append(f"put {plan['RootVolumeId']} back at {plan['RootDeviceName']}")
    if plan["CreatePasswordEnabledAmi"]:
        steps.append(f"create a password-enabled AMI of {instance_id} (not waited for)")
    if plan["InitialState"] == "running":
        steps.append(f"start {instance_id}")
    steps.append("delete the helper and everything created for it")
    return steps


def _change_step(plan: Plan) -> str:
    if plan["Platform"] == "windows":
        return (
            "make the volume's launch agent (EC2Launch v2, v1 or EC2Config) set a new "
            "random Administrator password at the next boot"
        )
    if plan["PublicKey"]:
        return "add the given public key to the users' authorized_keys"
    return f"add a new {plan['KeyType']} key; store its private key in {plan['KeyParameter']}"


def _replace_root_steps(plan: Plan) -> list[str]:
    instance_id, volume_id = plan["InstanceId"], plan["RootVolumeId"]
    steps = [
        f"leave {instance_id} running until one reboot at the end; launch a "
        f"{plan['HelperInstanceType']} Ubuntu 24.04 helper ({plan['HelperAmiParameter']})"
    ]
    if plan["Backup"] != "none":
        steps.append(f"snapshot {volume_id} (not waited for)")
    steps += [
        f"copy {volume_id} as it is now (crash-consistent) and attach the copy to the helper",
        _change_step(plan) + " on the copy",
        f"replace the root volume of {instance_id} with the repaired copy (EC2 reboots it in "
        "place: same network interfaces, IP addresses and DNS name)",
        f"keep {volume_id}, tagged {REPLACED_BY_TAG}: writes made between the copy and the "
        "reboot exist only there",
        "delete the helper and everything created for it",
    ]
    return steps


def _online_steps(plan: Plan) -> list[str]:
    instance_id = plan["InstanceId"]
    steps = [f"leave {instance_id} running: no stop, no helper, no network"]
    if plan["Backup"] != "none":
        steps.append(f"snapshot {plan['RootVolumeId']} (not waited for)")
    if plan["Platform"] == "windows":
        steps.append(
            f"run {WINDOWS_TOOL_DOCUMENT} {WINDOWS_TOOL_COMMAND} on {instance_id}; "
            f"the new password goes to {plan['PasswordParameter']} (SecureString)"
        )
    elif plan["PublicKey"]:
        steps.append(
            f"run the rescue document on {instance_id} itself: add the given public "
            "key to the users' authorized_keys"
        )
    else:
        steps.append(
            f"run the rescue document on {instance_id} itself: add a new "
            f"{plan['KeyType']} key; store its private key in {plan['KeyParameter']}"
        )
    return steps
