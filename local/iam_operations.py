"""The engine's IAM map: which authorizations AWS makes for each API call a handler makes.

After the Service Authorization Reference: the action, each resource ARN (built from the
request and the resources' current tags in moto), the request's condition keys, and the
actions AWS checks on the caller while serving it. local/iam_world.py reads the resources and
their tags; local/iam.py evaluates the checks against each function's policy; docs/local-iam.md
has the whole story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lambdas.names import LOCK_KEY
from local.iam_world import PARTITION, Check, World


class UnknownOperation(RuntimeError):
    """A handler made a call the local IAM map does not know: add it to OPERATIONS."""


# -- operation -> authorizations (Service Authorization Reference) ------------------------------
Authorize = Callable[[World, Mapping[str, Any]], list[Check]]


def _tag_specs(params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {
        spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
        for spec in params.get("TagSpecifications", [])
    }


def _created(action: str, kinds: Mapping[str, str]) -> Authorize:
    """A create call: the new resource(s) with their request tags, the resources it names, and
    ec2:CreateTags for each TagSpecification (ec2:CreateAction = this action)."""
    operation = action.split(":", 1)[1]

    def authorize(world: World, params: Mapping[str, Any]) -> list[Check]:
        specs = _tag_specs(params)
        checks = [
            world.new(action, kind, specs.get(spec_type, {})) for spec_type, kind in kinds.items()
        ]
        checks += _create_tags(world, operation, specs)
        return checks

    return authorize


def _create_tags(
    world: World, operation: str, specs: Mapping[str, Mapping[str, str]]
) -> list[Check]:
    kinds = {
        "instance": "instance",
        "volume": "volume",
        "network-interface": "network-interface",
        "image": "image",
        "snapshot": "snapshot",
        "vpc": "vpc",
        "subnet": "subnet",
        "internet-gateway": "internet-gateway",
        "route-table": "route-table",
        "security-group": "security-group",
        "replace-root-volume-task": "replace-root-volume-task",
    }
    return [
        world.new("ec2:CreateTags", kinds[spec_type], tags, {"ec2:CreateAction": (operation,)})
        for spec_type, tags in specs.items()
        if tags
    ]


def _on(action: str, *named: tuple[str, str]) -> Authorize:
    """A call on existing resources named by request parameters: (kind, parameter); a list
    parameter names several."""

    def authorize(world: World, params: Mapping[str, Any]) -> list[Check]:
        checks = []
        for kind, parameter in named:
            value = params.get(parameter)
            for resource_id in value if isinstance(value, list) else [value]:
                if resource_id:
                    checks.append(world.existing(action, kind, resource_id))
        return checks

    return authorize


def _any(action: str) -> Authorize:
    return lambda world, params: [Check(action, "*")]


def _grants_for(world: World, key_ids: Iterable[str | None]) -> list[Check]:
    """EC2 creates a grant on each customer managed key of the encrypted volumes it attaches
    or starts, with the caller's rights (EBS encryption: permissions for users)."""
    context = {
        "kms:GrantIsForAWSResource": ("true",),
        "kms:ViaService": (f"ec2.{world.region}.amazonaws.com",),
    }
    keys = sorted({k for k in key_ids if k and world.customer_managed(k)})
    return [Check("kms:CreateGrant", world.key_arn(k), context) for k in keys]


def _attach_volume(world: World, params: Mapping[str, Any]) -> list[Check]:
    volume = world.ec2().volumes.get(params["VolumeId"])
    checks = _on("ec2:AttachVolume", ("instance", "InstanceId"), ("volume", "VolumeId"))(
        world, params
    )
    if volume is not None and volume.encrypted:
        checks += _grants_for(world, [volume.kms_key_id])
    return checks


def _detach_volume(world: World, params: Mapping[str, Any]) -> list[Check]:
    volume = world.ec2().volumes.get(params["VolumeId"])
    instance_id = params.get("InstanceId") or (
        volume.attachment.instance.id if volume is not None and volume.attachment else None
    )
    checks = [world.existing("ec2:DetachVolume", "volume", params["VolumeId"])]
    if instance_id:
        checks.append(world.existing("ec2:DetachVolume", "instance", instance_id))
    return checks


def _request_tags(params: Mapping[str, Any], spec_type: str) -> dict[str, tuple[str, ...]]:
    """aws:RequestTag/* of a create call: in the context of every resource it authorizes."""
    tags = _tag_specs(params).get(spec_type, {})
    return {f"aws:RequestTag/{k}": (v,) for k, v in tags.items()}


def _encryption_grants(world: World, volume_ids: Iterable[str]) -> list[Check]:
    volumes = [world.ec2().volumes.get(v) for v in volume_ids]
    return _grants_for(world, [v.kms_key_id for v in volumes if v is not None and v.encrypted])


def _copy_volumes(world: World, params: Mapping[str, Any]) -> list[Check]:
    """The source volume, the new one, CreateTags on creation; EC2 reads an encrypted
    source with the caller's grant."""
    source = params["SourceVolumeId"]
    return [
        world.existing("ec2:CopyVolumes", "volume", source, _request_tags(params, "volume")),
        *_created("ec2:CopyVolumes", {"volume": "volume"})(world, params),
        *_encryption_grants(world, [source]),
    ]


def _replace_root_task(world: World, params: Mapping[str, Any]) -> list[Check]:
    """The instance, the replacement volume, the new task with its tags; EC2 attaches an
    encrypted replacement with the caller's grant."""
    tags = _request_tags(params, "replace-root-volume-task")
    checks = [
        world.existing("ec2:CreateReplaceRootVolumeTask", "instance", params["InstanceId"], tags)
    ]
    if params.get("VolumeId"):
        checks.append(
            world.existing("ec2:CreateReplaceRootVolumeTask", "volume", params["VolumeId"], tags)
        )
        checks += _encryption_grants(world, [params["VolumeId"]])
    checks += _created(
        "ec2:CreateReplaceRootVolumeTask", {"replace-root-volume-task": "replace-root-volume-task"}
    )(world, params)
    return checks


def _tags_on(action: str) -> Authorize:
    """CreateTags or DeleteTags on existing resources: each resource, with the tags named as
    aws:RequestTag/* (values given) and aws:TagKeys."""

    def authorize(world: World, params: Mapping[str, Any]) -> list[Check]:
        return _tag_checks(world, action, params)

    return authorize


def _tag_checks(world: World, action: str, params: Mapping[str, Any]) -> list[Check]:
    tags = {t["Key"]: t.get("Value") for t in params.get("Tags", [])}
    context = {f"aws:RequestTag/{k}": (v,) for k, v in tags.items() if v is not None}
    context["aws:TagKeys"] = tuple(tags)
    kinds = {"vol-": "volume", "i-": "instance", "snap-": "snapshot", "ami-": "image"}
    checks = []
    for resource_id in params["Resources"]:
        kind = next((k for p, k in kinds.items() if resource_id.startswith(p)), None)
        if kind is None:
            raise UnknownOperation(f"{action} on {resource_id}: map its kind here")
        checks.append(world.existing(action, kind, resource_id, context))
    return checks


def _start_instances(world: World, params: Mapping[str, Any]) -> list[Check]:
    checks = _on("ec2:StartInstances", ("instance", "InstanceIds"))(world, params)
    backend = world.ec2()
    for instance_id in params["InstanceIds"]:
        instance = backend.get_instance(instance_id)
        volumes = [m.volume_id for m in instance.block_device_mapping.values()]
        checks += _grants_for(
            world,
            [
                backend.volumes[v].kms_key_id
                for v in volumes
                if v in backend.volumes and backend.volumes[v].encrypted
            ],
        )
    return checks


def _run_instances(world: World, params: Mapping[str, Any]) -> list[Check]:
    """RunInstances authorizes on the new instance, volumes and interface, and on the subnet,
    security groups, image and key pair it names (Service Authorization Reference)."""
    action = "ec2:RunInstances"
    specs = _tag_specs(params)
    checks = [
        world.new(action, "instance", specs.get("instance", {})),
        world.new(action, "volume", specs.get("volume", {})),
    ]
    interfaces = params.get("NetworkInterfaces") or [{}]
    subnets = {i.get("SubnetId") for i in interfaces} | {params.get("SubnetId")}
    groups = {g for i in interfaces for g in i.get("Groups", [])} | set(
        params.get("SecurityGroupIds", [])
    )
    checks.append(world.new(action, "network-interface", specs.get("network-interface", {})))
    checks += [world.existing(action, "subnet", s) for s in sorted(filter(None, subnets))]
    checks += [world.existing(action, "security-group", g) for g in sorted(groups)]
    checks.append(world.existing(action, "image", params["ImageId"]))
    if params.get("KeyName"):
        checks.append(world.existing(action, "key-pair", params["KeyName"]))
    checks += _create_tags(world, "RunInstances", specs)
    if params.get("IamInstanceProfile"):
        checks.append(
            Check(
                "iam:PassRole",
                world.role_of_profile(params["IamInstanceProfile"]),
                {"iam:PassedToService": ("ec2.amazonaws.com",)},
            )
        )
    # A new encrypted volume without KmsKeyId takes the account's EBS default key; with a
    # customer managed one, EC2 uses it with the caller's rights (EBS encryption: requirements).
    keys = {
        m["Ebs"].get("KmsKeyId") or world.ebs_default_key()
        for m in params.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("Encrypted") or world.ec2().ebs_encryption_by_default
    }
    via_ec2 = {"kms:ViaService": (f"ec2.{world.region}.amazonaws.com",)}
    for key in sorted(k for k in keys if world.customer_managed(k)):
        checks += [
            Check(a, world.key_arn(key), via_ec2)
            for a in ("kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:DescribeKey")
        ]
        checks += _grants_for(world, [key])
    return checks


def _disassociate_route_table(world: World, params: Mapping[str, Any]) -> list[Check]:
    for table in world.ec2().route_tables.values():
        subnet = table._associations.get(params["AssociationId"])
        if subnet is not None:
            return [
                world.existing("ec2:DisassociateRouteTable", "route-table", table.id),
                world.existing("ec2:DisassociateRouteTable", "subnet", subnet),
            ]
    return [world.existing("ec2:DisassociateRouteTable", "route-table", "*")]


def _create_image(world: World, params: Mapping[str, Any]) -> list[Check]:
    return _on("ec2:CreateImage", ("instance", "InstanceId"))(world, params) + _created(
        "ec2:CreateImage", {"image": "image", "snapshot": "snapshot"}
    )(world, params)


def _create_snapshot(world: World, params: Mapping[str, Any]) -> list[Check]:
    return _on("ec2:CreateSnapshot", ("volume", "VolumeId"))(world, params) + _created(
        "ec2:CreateSnapshot", {"snapshot": "snapshot"}
    )(world, params)


def _in_vpc(action: str, kind: str) -> Authorize:
    def authorize(world: World, params: Mapping[str, Any]) -> list[Check]:
        vpc = params.get("VpcId") or next(v.id for v in world.ec2().vpcs.values() if v.is_default)
        return [*_created(action, {kind: kind})(world, params), world.existing(action, "vpc", vpc)]

    return authorize


def _parameter(action: str) -> Authorize:
    def authorize(world: World, params: Mapping[str, Any]) -> list[Check]:
        checks = [Check(action, world.parameter_arn(params["Name"]))]
        via_ssm = {"kms:ViaService": (f"ssm.{world.region}.amazonaws.com",)}
        if action == "ssm:GetParameter" and params.get("WithDecryption"):
            # Parameter Store decrypts a SecureString with the caller's kms:Decrypt.
            found = world.parameter(params["Name"])
            if found is not None and found.parameter_type == "SecureString":
                key = found.keyid or "alias/aws/ssm"
                if world.customer_managed(key):
                    checks.append(Check("kms:Decrypt", world.key_arn(key), via_ssm))
        if action == "ssm:PutParameter" and params.get("Type") == "SecureString":
            key = params.get("KeyId") or "alias/aws/ssm"
            encrypt = "kms:GenerateDataKey" if params.get("Tier") == "Advanced" else "kms:Encrypt"
            if world.customer_managed(key):
                checks.append(Check(encrypt, world.key_arn(key), via_ssm))
        return checks

    return authorize


def _send_command(world: World, params: Mapping[str, Any]) -> list[Check]:
    if params.get("Targets"):
        raise UnknownOperation(
            "ssm:SendCommand with Targets: map its resources in local/iam_operations.py"
        )
    name = params["DocumentName"]
    # AWS's own documents are in no account.
    account = "" if name.startswith(("AWS-", "AWSSupport-", "AWSEC2-")) else world.account
    checks = [
        Check("ssm:SendCommand", f"arn:{PARTITION}:ssm:{world.region}:{account}:document/{name}")
    ]
    checks += [
        Check("ssm:SendCommand", world.ec2_arn("instance", i))
        for i in params.get("InstanceIds", [])
    ]
    return checks


def _table(action: str) -> Authorize:
    return lambda world, params: [
        Check(
            action,
            (
                f"arn:{PARTITION}:dynamodb:{world.region}:{world.account}:table/{params['TableName']}"
            ),
            _leading_keys(params),
        )
    ]


def _publish(world: World, params: Mapping[str, Any]) -> list[Check]:
    """sns:Publish on the topic; to an encrypted topic SNS also uses the caller's
    kms:GenerateDataKey and kms:Decrypt on its key (SNS Developer Guide, "Key management")."""
    from moto.sns.models import sns_backends

    topic_arn = params["TopicArn"]
    checks = [Check("sns:Publish", topic_arn)]
    topic = sns_backends[world.account][world.region].topics.get(topic_arn)
    key = getattr(topic, "kms_master_key_id", None) if topic else None
    if key and world.customer_managed(key):
        context = {
            "kms:ViaService": (f"sns.{world.region}.amazonaws.com",),
            "kms:EncryptionContext:aws:sns:topicArn": (topic_arn,),
        }
        checks += [
            Check(action, world.key_arn(key), context)
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return checks


def _leading_keys(params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """dynamodb:LeadingKeys: the partition key value of the item a call names (DynamoDB:
    "Using IAM policy conditions for fine-grained access control"); string keys only here."""
    item = params.get("Key") or params.get("Item") or {}
    value = item.get(LOCK_KEY)
    return {"dynamodb:LeadingKeys": (str(value["S"]),)} if isinstance(value, dict) else {}


def _assume_role(world: World, params: Mapping[str, Any]) -> list[Check]:
    return [Check("sts:AssumeRole", str(params["RoleArn"]))]


def _execution(action: str) -> Authorize:
    return lambda world, params: [Check(action, params["executionArn"])]


def _state_machine(action: str) -> Authorize:
    """StartExecution and DescribeStateMachine: the stateMachine resource type (Service
    Authorization Reference, AWS Step Functions), in whichever Region its ARN names."""
    return lambda world, params: [Check(action, params["stateMachineArn"])]


def _kms_key(action: str) -> Authorize:
    return lambda world, params: [Check(action, world.key_arn(params["KeyId"]))]


_UNSCOPED = (
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeSubnets",
    "ec2:DescribeImages",
    "ec2:DescribeSnapshots",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeVpcs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeTags",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeNatGateways",
    "ec2:DescribeReplaceRootVolumeTasks",
    "ssm:DescribeInstanceInformation",
    "ssm:ListCommands",
    "ssm:GetCommandInvocation",
    "ssm:DescribeParameters",
)

# IAM prefix:Operation -> the authorizations AWS makes for it.
OPERATIONS: dict[str, Authorize] = {
    **{action: _any(action) for action in _UNSCOPED},
    "ec2:RunInstances": _run_instances,
    "ec2:StartInstances": _start_instances,
    "ec2:StopInstances": _on("ec2:StopInstances", ("instance", "InstanceIds")),
    "ec2:TerminateInstances": _on("ec2:TerminateInstances", ("instance", "InstanceIds")),
    "ec2:ModifyInstanceAttribute": _on("ec2:ModifyInstanceAttribute", ("instance", "InstanceId")),
    "ec2:AttachVolume": _attach_volume,
    "ec2:DetachVolume": _detach_volume,
    "ec2:CreateImage": _create_image,
    "ec2:CopyVolumes": _copy_volumes,
    "ec2:CreateReplaceRootVolumeTask": _replace_root_task,
    "ec2:CreateTags": _tags_on("ec2:CreateTags"),
    "ec2:DeleteTags": _tags_on("ec2:DeleteTags"),
    "ec2:DeleteVolume": _on("ec2:DeleteVolume", ("volume", "VolumeId")),
    "ec2:CreateSnapshot": _create_snapshot,
    "ec2:CreateVpc": _created("ec2:CreateVpc", {"vpc": "vpc"}),
    "ec2:CreateInternetGateway": _created(
        "ec2:CreateInternetGateway", {"internet-gateway": "internet-gateway"}
    ),
    "ec2:CreateSubnet": _in_vpc("ec2:CreateSubnet", "subnet"),
    "ec2:CreateRouteTable": _in_vpc("ec2:CreateRouteTable", "route-table"),
    "ec2:CreateSecurityGroup": _in_vpc("ec2:CreateSecurityGroup", "security-group"),
    "ec2:AttachInternetGateway": _on(
        "ec2:AttachInternetGateway", ("internet-gateway", "InternetGatewayId"), ("vpc", "VpcId")
    ),
    "ec2:DetachInternetGateway": _on(
        "ec2:DetachInternetGateway", ("internet-gateway", "InternetGatewayId"), ("vpc", "VpcId")
    ),
    "ec2:CreateRoute": _on("ec2:CreateRoute", ("route-table", "RouteTableId")),
    "ec2:AssociateRouteTable": _on(
        "ec2:AssociateRouteTable", ("route-table", "RouteTableId"), ("subnet", "SubnetId")
    ),
    "ec2:DisassociateRouteTable": _disassociate_route_table,
    "ec2:AuthorizeSecurityGroupEgress": _on(
        "ec2:AuthorizeSecurityGroupEgress", ("security-group", "GroupId")
    ),
    "ec2:RevokeSecurityGroupEgress": _on(
        "ec2:RevokeSecurityGroupEgress", ("security-group", "GroupId")
    ),
    "ec2:DeleteSecurityGroup": _on("ec2:DeleteSecurityGroup", ("security-group", "GroupId")),
    "ec2:DeleteRouteTable": _on("ec2:DeleteRouteTable", ("route-table", "RouteTableId")),
    "ec2:DeleteInternetGateway": _on(
        "ec2:DeleteInternetGateway", ("internet-gateway", "InternetGatewayId")
    ),
    "ec2:DeleteSubnet": _on("ec2:DeleteSubnet", ("subnet", "SubnetId")),
    "ec2:DeleteVpc": _on("ec2:DeleteVpc", ("vpc", "VpcId")),
    "ssm:GetParameter": _parameter("ssm:GetParameter"),
    "ssm:PutParameter": _parameter("ssm:PutParameter"),
    "ssm:DeleteParameter": _parameter("ssm:DeleteParameter"),
    "ssm:SendCommand": _send_command,
    "kms:DescribeKey": _kms_key("kms:DescribeKey"),
    "dynamodb:GetItem": _table("dynamodb:GetItem"),
    "dynamodb:PutItem": _table("dynamodb:PutItem"),
    "dynamodb:UpdateItem": _table("dynamodb:UpdateItem"),
    "dynamodb:DeleteItem": _table("dynamodb:DeleteItem"),
    "sts:AssumeRole": _assume_role,
    "sns:Publish": _publish,
    "states:DescribeExecution": _execution("states:DescribeExecution"),
    "states:GetExecutionHistory": _execution("states:GetExecutionHistory"),
    "states:StartExecution": _state_machine("states:StartExecution"),
    "states:DescribeStateMachine": _state_machine("states:DescribeStateMachine"),
}
