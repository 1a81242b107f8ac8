"""What each phase function may do, as one declarative table: Phase.handler -> rules
(statemachine/phases.py lists the functions).

Each function gets its own role with exactly its rules. Rules name resources by template
(`{ec2}:instance/*`, `{lock_table_arn}`), which `render` fills with the stack's values, so the
table reads like the IAM policy it becomes.

Principles the table keeps (tests/stack checks them on the synthesized template):
- no action with a wildcard (`ec2:*`, `ec2:Describe*`): every action is spelled out;
- Resource `*` only for actions AWS gives no resource-level control over (UNSCOPABLE_ACTIONS);
- things the execution creates are created only with its tag (`aws:RequestTag/...`) and changed
  or deleted only when they carry it (`aws:ResourceTag/...`);
- every resource with a wildcard carries a reason, which becomes its cdk-nag acknowledgement.
Keep it true to `lambdas/handlers/*.py`: a call a handler makes and the table lacks fails in AWS
with AccessDenied, and moto (the local engine) does not enforce IAM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lambdas.logic.fleet import FLEET_RESULTS
from lambdas.names import (
    EXECUTION_TAG,
    FLEET_COUNTER_PREFIX,
    MEMBER_ROLE_NAME,
    REPLACED_BY_TAG,
    STACK_NAME,
    UBUNTU_AMI_PARAMETERS,
    WINDOWS_TOOL_DOCUMENT,
    breaker_key,
    in_flight_key,
    key_parameter,
    pending_parameter,
    result_parameter,
)

Conditions = Mapping[str, Mapping[str, str | tuple[str, ...]]]

# Actions that AWS authorizes only on Resource "*" (Service Authorization Reference: no resource
# types). Read-only ones are the rule; the few writes are AWS's own telemetry and log delivery.
UNSCOPABLE_ACTIONS: Mapping[str, str] = {
    "ec2:DescribeInstances": "read-only",
    "ec2:DescribeVolumes": "read-only",
    "ec2:DescribeSubnets": "read-only",
    "ec2:DescribeImages": "read-only",
    "ec2:DescribeSnapshots": "read-only",
    "ec2:DescribeInstanceTypes": "read-only",
    "ec2:DescribeVpcs": "read-only",
    "ec2:DescribeTags": "read-only",
    "ec2:DescribeInternetGateways": "read-only",
    "ec2:DescribeRouteTables": "read-only",
    "ec2:DescribeSecurityGroups": "read-only",
    "ec2:DescribeVpcEndpoints": "read-only",
    "ec2:DescribeNatGateways": "read-only",
    "ec2:GetEbsDefaultKmsKeyId": "read-only",
    "ec2:DescribeReplaceRootVolumeTasks": "read-only",
    "ssm:DescribeInstanceInformation": "read-only",
    "ssm:ListCommands": "read-only",
    "ssm:GetCommandInvocation": "read-only",
    "ssm:DescribeParameters": "read-only (metadata, never values)",
    # Added by CDK for tracing=ACTIVE (functions) and tracing_enabled (state machine).
    "xray:PutTraceSegments": "X-Ray segments have no ARN",
    "xray:PutTelemetryRecords": "X-Ray telemetry has no ARN",
    "xray:GetSamplingRules": "read-only",
    "xray:GetSamplingTargets": "read-only",
    # Added by CDK for state machine logging: CloudWatch vended-log delivery has no ARN.
    "logs:CreateLogDelivery": "vended-log delivery has no ARN",
    "logs:GetLogDelivery": "read-only",
    "logs:UpdateLogDelivery": "vended-log delivery has no ARN",
    "logs:DeleteLogDelivery": "vended-log delivery has no ARN",
    "logs:ListLogDeliveries": "read-only",
    "logs:PutResourcePolicy": "log resource policies are account-wide",
    "logs:DescribeResourcePolicies": "read-only",
    "logs:DescribeLogGroups": "read-only",
}

# Actions no handler calls by name: AWS checks them on the caller while serving another call.
IMPLIED_ACTIONS: Mapping[str, str] = {
    "kms:Encrypt": "Parameter Store encrypts a SecureString with the caller's rights",
    "kms:GenerateDataKey": "Parameter Store encrypts advanced-tier SecureStrings with a data key",
    "kms:Decrypt": "Parameter Store decrypts for GetParameter WithDecryption; EC2 for volumes",
    "kms:DescribeKey": "EC2 reads the key of a new encrypted volume (LaunchHelper)",
    "kms:CreateGrant": "EC2 makes a grant on the key when it attaches or starts encrypted volumes",
    "kms:GenerateDataKeyWithoutPlaintext": "EC2 makes a new encrypted volume's data key",
    "iam:PassRole": "RunInstances with the helper's instance profile passes its role",
    "ec2:CreateTags": "TagSpecifications in a create call tag through CreateTags",
}

ALL_RESOURCES_REASON = (
    "Resource '*' only for {actions}: AWS supports no resource-level permissions for "
    "these actions (Service Authorization Reference), so they cannot be scoped further."
)


@dataclass(frozen=True)
class Rule:
    """One Allow statement of a function's policy, with resources as templates for `render`."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Conditions = field(default_factory=dict)
    # Why a resource with a wildcard is as narrow as it can be: the cdk-nag acknowledgement.
    why: str = ""

    def __post_init__(self) -> None:
        for action in self.actions:
            if "*" in action or ":" not in action:
                raise ValueError(f"spell actions out, no wildcard: {action!r}")
        if "*" in self.resources:
            if self.resources != ("*",):
                raise ValueError("keep Resource '*' in a rule of its own")
            scoped = [a for a in self.actions if a not in UNSCOPABLE_ACTIONS]
            if scoped:
                raise ValueError(f"{scoped} support resource-level permissions: scope them")
        elif any("*" in r for r in self.resources) and len(self.why) < 30:
            raise ValueError(f"say why {self.resources} needs a wildcard (>= 30 characters)")


# Resource templates, filled by `render`.
EC2 = "arn:{partition}:ec2:{region}:{account}"
EC2_IMAGE = "arn:{partition}:ec2:{region}::image/*"  # AMI and snapshot ARNs have no account
EC2_SNAPSHOT = "arn:{partition}:ec2:{region}::snapshot/*"
PARAMETER = "arn:{partition}:ssm:{region}:{account}:parameter"
PENDING_KEYS = f"{PARAMETER}{pending_parameter('*', '*')}"
RESULTS = f"{PARAMETER}{result_parameter('*')}"
PUBLISHED_KEYS = f"{PARAMETER}{key_parameter('*')}"
UBUNTU_AMIS = f"arn:{{partition}}:ssm:{{region}}::parameter{UBUNTU_AMI_PARAMETERS}/*"
ANY_KMS_KEY = "arn:{partition}:kms:{region}:*:key/*"
# AWS's own Run Command document that resets a running Windows instance's password (online).
WINDOWS_TOOL = f"arn:{{partition}}:ssm:{{region}}::document/{WINDOWS_TOOL_DOCUMENT}"

CREATED_WITH_TAG: Conditions = {"Null": {f"aws:RequestTag/{EXECUTION_TAG}": "false"}}
CARRIES_TAG: Conditions = {"Null": {f"aws:ResourceTag/{EXECUTION_TAG}": "false"}}
VIA_SSM: Conditions = {"StringEquals": {"kms:ViaService": "ssm.{region}.amazonaws.com"}}
VIA_EC2: Conditions = {"StringEquals": {"kms:ViaService": "ec2.{region}.amazonaws.com"}}
# SNS encrypts a message to the stack's topic with the publisher's rights (SNS Developer Guide,
# "Key management": kms:GenerateDataKey* and kms:Decrypt), for that topic only.
VIA_SNS_TO_TOPIC: Conditions = {
    "StringEquals": {
        "kms:ViaService": "sns.{region}.amazonaws.com",
        "kms:EncryptionContext:aws:sns:topicArn": "{topic_arn}",
    }
}
# Announce a finished reset (or an alarm's suppressed one) on the topic (lambdas/logic/notify.py).
NOTIFY: tuple[Rule, ...] = (
    Rule(("sns:Publish",), ("{topic_arn}",)),
    Rule(("kms:GenerateDataKey", "kms:Decrypt"), ("{key_arn}",), VIA_SNS_TO_TOPIC),
)
# Only the lock table's circuit-breaker items (DynamoDB Developer Guide, "Using IAM policy
# conditions for fine-grained access control": dynamodb:LeadingKeys, the partition key).
BREAKER_ITEMS: Conditions = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": (breaker_key("*"),)}
}
# An alarm-started run records its end on its instance's circuit breaker (lambdas/logic/breaker.py).
RECORD_BREAKER = Rule(("dynamodb:UpdateItem",), ("{lock_table_arn}",), BREAKER_ITEMS)

WHY_ANY_INSTANCE = (
    "The target is whichever instance the caller names, so any instance of this account and "
    "Region; the caller's right to start an execution is the gate."
)
WHY_ANY_VOLUME = (
    "The target's root volume is whichever volume that instance has, so any volume of this "
    "account and Region."
)
WHY_OWN_RESOURCES = (
    "IDs are only known at run time; the aws:ResourceTag condition limits this to resources "
    "that carry the execution tag, i.e. ones an execution created."
)
WHY_CREATE_TAGGED = (
    "A new resource has no ID before it exists; the aws:RequestTag condition allows creating "
    "it only with the execution tag, which cleanup later finds it by."
)
WHY_TAG_ON_CREATE = (
    "Tags can be written only as part of creating the resource (ec2:CreateAction condition), "
    "never on existing resources."
)
WHY_PENDING = (
    "One pending key per instance and execution: "
    f"{pending_parameter('<instance>', '<execution>')}, both unknown until run time."
)
WHY_RESULTS = (
    f"One result per instance: {result_parameter('<instance>')}, the instance chosen at run time."
)
WHY_PUBLISHED = (
    f"The key's name {key_parameter('<instance>')} is AWS's own (AWSSupport-ResetAccess); the "
    "instance is chosen at run time."
)
WHY_UBUNTU = (
    "Canonical's public AMI parameters for Ubuntu 24.04, one per architecture and volume type "
    "under this path; no account's data."
)
WHY_ANY_KEY = (
    "The target's volumes may be encrypted with any customer key, of this or another account; "
    "limited to {actions}."
)
WHY_AMI = (
    "AMIs and snapshots have no account in their ARN; new ones get their ID at creation. "
    "Creation is still tied to an instance or volume named at run time."
)
WHY_EXECUTIONS = (
    "Executions of this one state machine only; the execution ID arrives with the status-change "
    "event."
)
WHY_NETWORK_FOR_HELPER = (
    "With SubnetId or SelectedInstanceSubnet the helper goes into the caller's subnet and VPC, "
    "which carry no execution tag; the helper itself and its security group do."
)

WHY_MEMBER_ROLES = (
    "The fleet's target accounts are named in its input (-c memberAccounts or organizationId "
    "narrows this at synth); the role name is the member stack's "
    "(ResetAccess-FleetMember-<Region>), which may only read instances and run ResetAccess."
)
WHY_OTHER_REGIONS = (
    "The fleet's target Regions are named in its input, unknown at synth unless -c "
    "memberRegions lists them (stacks/fleet_scope.py); only the member stack's ResetAccess "
    "state machine (and its executions) of this account, in those Regions."
)
# A member deployment's state machine has the fixed name (lambdas/logic/fleet.py).
MEMBER_MACHINES = f"arn:{{partition}}:states:*:{{account}}:stateMachine:{STACK_NAME}"
MEMBER_MACHINE_EXECUTIONS = f"arn:{{partition}}:states:*:{{account}}:execution:{STACK_NAME}:*"
WHY_FLEET_RESULTS = "One result per fleet execution, named after it, under the fleet's own path."
FLEET_RESULTS_ARN = f"{PARAMETER}{FLEET_RESULTS}/*"
# The fleet's functions touch only the fleet's error counts in the lock table, never a lock.
FLEET_COUNTER_ONLY: Conditions = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": (f"{FLEET_COUNTER_PREFIX}*",)}
}

MEMBER_ROLES = Rule(
    ("sts:AssumeRole",),
    (f"arn:{{partition}}:iam::*:role/{MEMBER_ROLE_NAME}-*",),
    why=WHY_MEMBER_ROLES,
)

DESCRIBE_INSTANCES = Rule(("ec2:DescribeInstances",), ("*",))
DESCRIBE_VOLUMES = Rule(("ec2:DescribeVolumes",), ("*",))

# EC2 creates a grant on the volume's KMS key when it attaches or starts with encrypted volumes.
GRANT_FOR_ENCRYPTED_VOLUMES = Rule(
    ("kms:CreateGrant",),
    (ANY_KMS_KEY,),
    {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"kms:ViaService": "ec2.{region}.amazonaws.com"},
    },
    why=WHY_ANY_KEY.format(actions="grants EC2 makes for itself (kms:GrantIsForAWSResource)"),
)

WHY_TASK = (
    "A root volume replacement task has no ID before it exists; the aws:RequestTag condition "
    "allows creating one only with the execution tag."
)
# A replacement task, created only with the execution tag, and its tags only on creation.
REPLACE_TASK: tuple[Rule, ...] = (
    Rule(
        ("ec2:CreateReplaceRootVolumeTask",),
        (f"{EC2}:replace-root-volume-task/*",),
        CREATED_WITH_TAG,
        WHY_TASK,
    ),
    Rule(
        ("ec2:CreateTags",),
        (f"{EC2}:replace-root-volume-task/*",),
        {"StringEquals": {"ec2:CreateAction": "CreateReplaceRootVolumeTask"}},
        WHY_TAG_ON_CREATE,
    ),
)

ROLLBACK: tuple[Rule, ...] = (
    Rule(
        ("ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeReplaceRootVolumeTasks"),
        ("*",),
    ),
    Rule(
        (
            "ec2:DetachVolume",
            "ec2:AttachVolume",
            # Replace-root: a replacement that succeeded before the failure is undone by a
            # second one, back to the old root volume (which carries no execution tag).
            "ec2:CreateReplaceRootVolumeTask",
        ),
        (f"{EC2}:instance/*", f"{EC2}:volume/*"),
        why=WHY_ANY_INSTANCE + " " + WHY_ANY_VOLUME,
    ),
    Rule(
        # StopInstances: a replace-root task that failed detached left no root volume; one
        # attaches only to a stopped instance.
        ("ec2:ModifyInstanceAttribute", "ec2:StartInstances", "ec2:StopInstances"),
        (f"{EC2}:instance/*",),
        why=WHY_ANY_INSTANCE,
    ),
    GRANT_FOR_ENCRYPTED_VOLUMES,
    *REPLACE_TASK,
    # Replace-root: the copy of the root volume, which the execution made and tagged.
    Rule(("ec2:DeleteVolume",), (f"{EC2}:volume/*",), CARRIES_TAG, WHY_OWN_RESOURCES),
    # Replace-root: the old root volume is the root again; only its ReplacedBy tag goes.
    Rule(
        ("ec2:DeleteTags",),
        (f"{EC2}:volume/*",),
        {"ForAllValues:StringEquals": {"aws:TagKeys": (REPLACED_BY_TAG,)}},
        why=WHY_ANY_VOLUME + f" Only the tag {REPLACED_BY_TAG} may be removed.",
    ),
)

CLEANUP: tuple[Rule, ...] = (
    Rule(
        (
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeRouteTables",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
            "ec2:DescribeTags",
        ),
        ("*",),
    ),
    # Before terminating a helper, make sure it will not delete a volume it borrowed.
    Rule(
        ("ec2:ModifyInstanceAttribute", "ec2:TerminateInstances"),
        (f"{EC2}:instance/*",),
        CARRIES_TAG,
        WHY_OWN_RESOURCES,
    ),
    Rule(
        ("ec2:DeleteSecurityGroup",), (f"{EC2}:security-group/*",), CARRIES_TAG, WHY_OWN_RESOURCES
    ),
    Rule(
        ("ec2:DisassociateRouteTable",),
        (f"{EC2}:route-table/*", f"{EC2}:subnet/*"),
        CARRIES_TAG,
        WHY_OWN_RESOURCES,
    ),
    Rule(("ec2:DeleteRouteTable",), (f"{EC2}:route-table/*",), CARRIES_TAG, WHY_OWN_RESOURCES),
    Rule(
        ("ec2:DetachInternetGateway",),
        (f"{EC2}:internet-gateway/*", f"{EC2}:vpc/*"),
        CARRIES_TAG,
        WHY_OWN_RESOURCES,
    ),
    Rule(
        ("ec2:DeleteInternetGateway",),
        (f"{EC2}:internet-gateway/*",),
        CARRIES_TAG,
        WHY_OWN_RESOURCES,
    ),
    Rule(("ec2:DeleteSubnet",), (f"{EC2}:subnet/*",), CARRIES_TAG, WHY_OWN_RESOURCES),
    Rule(("ec2:DeleteVpc",), (f"{EC2}:vpc/*",), CARRIES_TAG, WHY_OWN_RESOURCES),
    Rule(("ssm:DeleteParameter",), (PENDING_KEYS,), why=WHY_PENDING),
)

RECORD_FAILURE: tuple[Rule, ...] = (
    # Reads where the instance and its root volume are, to tell a person what to do.
    Rule(("ec2:DescribeInstances", "ec2:DescribeVolumes"), ("*",)),
    Rule(("ssm:PutParameter",), (RESULTS,), why=WHY_RESULTS),
    Rule(("dynamodb:DeleteItem",), ("{lock_table_arn}",)),
    RECORD_BREAKER,
    *NOTIFY,
)

CREATE_IMAGE: tuple[Rule, ...] = (
    Rule(("ec2:CreateImage",), (f"{EC2}:instance/*",), why=WHY_ANY_INSTANCE),
    Rule(("ec2:CreateImage",), (EC2_IMAGE,), CREATED_WITH_TAG, WHY_AMI),
    Rule(("ec2:CreateImage",), (EC2_SNAPSHOT,), why=WHY_AMI),
)


def _distinct(*rules: Rule) -> tuple[Rule, ...]:
    """Rules without one that an earlier rule already grants whole (same resources and
    conditions): a repeated statement is one no call needs (the engine's mutation test)."""
    kept: list[Rule] = []
    for rule in rules:
        if not any(
            set(rule.actions) <= set(k.actions)
            and rule.resources == k.resources
            and rule.conditions == k.conditions
            for k in kept
        ):
            kept.append(rule)
    return tuple(kept)


_PHASE_PERMISSIONS: Mapping[str, tuple[Rule, ...]] = {
    "preflight": (
        Rule(
            (
                "ec2:DescribeInstances",
                "ec2:DescribeVolumes",
                "ec2:DescribeSubnets",
                "ec2:DescribeInstanceTypes",
                "ec2:GetEbsDefaultKmsKeyId",
                "ssm:DescribeInstanceInformation",
                # Whether a helper in the caller's subnet can reach SSM (reachability.py).
                "ec2:DescribeRouteTables",
                "ec2:DescribeVpcEndpoints",
                "ec2:DescribeNatGateways",
            ),
            ("*",),
        ),
        Rule(
            ("kms:DescribeKey",),
            (ANY_KMS_KEY,),
            why=WHY_ANY_KEY.format(actions="reading key metadata to refuse an unusable key"),
        ),
        # Take the lock; when another execution holds it, read which one to say so. An
        # alarm-started run also takes its instance's circuit breaker (a put), and withdraws
        # from it when the lock is refused.
        Rule(("dynamodb:PutItem", "dynamodb:GetItem"), ("{lock_table_arn}",)),
        Rule(("dynamodb:DeleteItem",), ("{lock_table_arn}",), BREAKER_ITEMS),
        *NOTIFY,
    ),
    "create_key": (
        Rule(("ssm:PutParameter",), (PENDING_KEYS,), why=WHY_PENDING),
        Rule(("kms:Encrypt", "kms:GenerateDataKey"), ("{key_arn}",), VIA_SSM),
    ),
    "prepare_network": (
        Rule(
            (
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
            ),
            ("*",),
        ),
        # Each create action only on the type it creates: a statement listing several of both
        # would also allow, say, CreateSubnet in any VPC as long as the request carries tags.
        *(
            Rule((action,), (f"{EC2}:{kind}/*",), CREATED_WITH_TAG, WHY_CREATE_TAGGED)
            for action, kind in (
                ("ec2:CreateVpc", "vpc"),
                ("ec2:CreateSubnet", "subnet"),
                ("ec2:CreateInternetGateway", "internet-gateway"),
                ("ec2:CreateRouteTable", "route-table"),
                ("ec2:CreateSecurityGroup", "security-group"),
            )
        ),
        # Creating inside a VPC also authorizes on the VPC: ours for subnets and route tables...
        Rule(
            ("ec2:CreateSubnet", "ec2:CreateRouteTable"),
            (f"{EC2}:vpc/*",),
            CARRIES_TAG,
            WHY_OWN_RESOURCES,
        ),
        # ...but the caller's for the security group when the helper joins a given subnet.
        Rule(("ec2:CreateSecurityGroup",), (f"{EC2}:vpc/*",), why=WHY_NETWORK_FOR_HELPER),
        Rule(
            (
                "ec2:AttachInternetGateway",
                "ec2:CreateRoute",
                "ec2:AssociateRouteTable",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
            ),
            (
                f"{EC2}:vpc/*",
                f"{EC2}:subnet/*",
                f"{EC2}:internet-gateway/*",
                f"{EC2}:route-table/*",
                f"{EC2}:security-group/*",
            ),
            CARRIES_TAG,
            WHY_OWN_RESOURCES,
        ),
        Rule(
            ("ec2:CreateTags",),
            (
                f"{EC2}:vpc/*",
                f"{EC2}:subnet/*",
                f"{EC2}:internet-gateway/*",
                f"{EC2}:route-table/*",
                f"{EC2}:security-group/*",
            ),
            {
                "StringEquals": {
                    "ec2:CreateAction": (
                        "CreateVpc",
                        "CreateSubnet",
                        "CreateInternetGateway",
                        "CreateRouteTable",
                        "CreateSecurityGroup",
                    )
                }
            },
            WHY_TAG_ON_CREATE,
        ),
    ),
    "launch_helper": (
        Rule(("ec2:DescribeInstances", "ec2:DescribeImages"), ("*",)),
        Rule(("ec2:RunInstances",), (f"{EC2}:instance/*",), CREATED_WITH_TAG, WHY_CREATE_TAGGED),
        Rule(
            ("ec2:RunInstances",),
            (f"{EC2}:security-group/*",),
            CARRIES_TAG,
            WHY_OWN_RESOURCES,
        ),
        Rule(
            ("ec2:RunInstances",),
            (f"{EC2}:volume/*", f"{EC2}:network-interface/*", f"{EC2}:subnet/*", EC2_IMAGE),
            why=(
                "RunInstances also authorizes on the helper's new root volume and network "
                "interface, the subnet (possibly the caller's) and Canonical's public AMI; the "
                "launch itself is allowed only for an instance tagged with the execution."
            ),
        ),
        Rule(
            ("ec2:CreateTags",),
            (f"{EC2}:instance/*", f"{EC2}:volume/*", f"{EC2}:network-interface/*"),
            {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            WHY_TAG_ON_CREATE,
        ),
        Rule(
            ("iam:PassRole",),
            ("{helper_role_arn}",),
            {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        Rule(("ssm:GetParameter",), (UBUNTU_AMIS,), why=WHY_UBUNTU),
        # The helper's encrypted root volume takes the account's EBS default key; a customer
        # managed one is used with this role's rights, through EC2 only (EBS encryption:
        # permissions for users). No kms:ReEncrypt*: a public AMI's snapshots are unencrypted.
        Rule(
            ("kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:DescribeKey"),
            (ANY_KMS_KEY,),
            VIA_EC2,
            why=WHY_ANY_KEY.format(actions="EC2 encrypting the helper's new root volume"),
        ),
        GRANT_FOR_ENCRYPTED_VOLUMES,
    ),
    "check_helper": (Rule(("ssm:DescribeInstanceInformation", "ec2:DescribeInstances"), ("*",)),),
    "stop_instance": (
        # StopInstances answers with the state it found: no Describe (lambdas/logic/instances.py).
        Rule(("ec2:StopInstances",), (f"{EC2}:instance/*",), why=WHY_ANY_INSTANCE),
    ),
    "check_instance": (DESCRIBE_INSTANCES,),
    "backup": (
        Rule(("ec2:DescribeImages", "ec2:DescribeSnapshots"), ("*",)),
        *CREATE_IMAGE,
        Rule(("ec2:CreateSnapshot",), (f"{EC2}:volume/*",), why=WHY_ANY_VOLUME),
        Rule(("ec2:CreateSnapshot",), (EC2_SNAPSHOT,), CREATED_WITH_TAG, WHY_AMI),
        Rule(
            ("ec2:CreateTags",),
            (EC2_IMAGE, EC2_SNAPSHOT),
            {"StringEquals": {"ec2:CreateAction": ("CreateImage", "CreateSnapshot")}},
            WHY_TAG_ON_CREATE,
        ),
    ),
    "detach_volume": (
        DESCRIBE_VOLUMES,
        Rule(
            ("ec2:DetachVolume",),
            (f"{EC2}:instance/*", f"{EC2}:volume/*"),
            why=WHY_ANY_INSTANCE + " " + WHY_ANY_VOLUME,
        ),
    ),
    "attach_volume": (
        DESCRIBE_VOLUMES,
        Rule(
            ("ec2:AttachVolume",),
            (f"{EC2}:instance/*", f"{EC2}:volume/*"),
            why=WHY_ANY_INSTANCE + " " + WHY_ANY_VOLUME,
        ),
        GRANT_FOR_ENCRYPTED_VOLUMES,
    ),
    "check_volume": (DESCRIBE_VOLUMES,),
    "run_rescue": (
        Rule(("ssm:ListCommands",), ("*",)),
        # Only our rescue document can be sent, by this function or anyone it could be tricked
        # into acting for. Instances: the helper (tagged) offline, the target itself online; as
        # online targets are arbitrary, a tag condition on the helper would narrow nothing.
        Rule(("ssm:SendCommand",), ("{document_arn}", WINDOWS_TOOL)),
        Rule(("ssm:SendCommand",), (f"{EC2}:instance/*",), why=WHY_ANY_INSTANCE),
    ),
    "check_rescue": (
        # Windows online: when the password parameter was last written, never its value.
        Rule(("ssm:GetCommandInvocation", "ssm:DescribeParameters"), ("*",)),
    ),
    "restore_instance": (
        # No Describe: the calls answer with what they found (lambdas/logic/instances.py).
        Rule(
            ("ec2:ModifyInstanceAttribute", "ec2:StartInstances"),
            (f"{EC2}:instance/*",),
            why=WHY_ANY_INSTANCE,
        ),
        GRANT_FOR_ENCRYPTED_VOLUMES,
    ),
    "publish_result": (
        # Names the password-enabled AMI in the result (Windows).
        Rule(("ec2:DescribeImages",), ("*",)),
        # A retry whose pending key is gone asks when the published key was written: metadata,
        # where GetParameter on /ec2rl/openssh/* would open every instance's published key.
        Rule(("ssm:DescribeParameters",), ("*",)),
        Rule(("ssm:GetParameter", "ssm:DeleteParameter"), (PENDING_KEYS,), why=WHY_PENDING),
        Rule(("ssm:PutParameter",), (PUBLISHED_KEYS,), why=WHY_PUBLISHED),
        Rule(("ssm:PutParameter",), (RESULTS,), why=WHY_RESULTS),
        Rule(("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"), ("{key_arn}",), VIA_SSM),
        Rule(("dynamodb:DeleteItem",), ("{lock_table_arn}",)),
        RECORD_BREAKER,
        *NOTIFY,
    ),
    "copy_root_volume": (
        DESCRIBE_VOLUMES,
        Rule(
            ("ec2:CopyVolumes",),
            (f"{EC2}:volume/*",),
            CREATED_WITH_TAG,
            why=WHY_ANY_VOLUME + " The copy is made only with the execution tag.",
        ),
        Rule(
            ("ec2:CreateTags",),
            (f"{EC2}:volume/*",),
            {"StringEquals": {"ec2:CreateAction": "CopyVolumes"}},
            WHY_TAG_ON_CREATE,
        ),
        GRANT_FOR_ENCRYPTED_VOLUMES,
    ),
    "replace_root": (
        Rule(("ec2:CreateReplaceRootVolumeTask",), (f"{EC2}:instance/*",), why=WHY_ANY_INSTANCE),
        # The replacement is only ever a volume an execution made (the repaired copy).
        Rule(
            ("ec2:CreateReplaceRootVolumeTask",),
            (f"{EC2}:volume/*",),
            CARRIES_TAG,
            WHY_OWN_RESOURCES,
        ),
        *REPLACE_TASK,
        GRANT_FOR_ENCRYPTED_VOLUMES,
    ),
    "check_replace_root": (
        Rule(("ec2:DescribeReplaceRootVolumeTasks",), ("*",)),
        # The old root volume, kept: only the one tag that says which execution replaced it.
        Rule(
            ("ec2:CreateTags",),
            (f"{EC2}:volume/*",),
            {
                "Null": {f"aws:RequestTag/{REPLACED_BY_TAG}": "false"},
                "ForAllValues:StringEquals": {"aws:TagKeys": (REPLACED_BY_TAG,)},
            },
            why=WHY_ANY_VOLUME + f" Only the tag {REPLACED_BY_TAG} may be written.",
        ),
    ),
    "record_failure": RECORD_FAILURE,
    "cleanup": CLEANUP,
    "rollback": ROLLBACK,
    "create_password_ami": (
        # A retried call finds the AMI it made instead of making a second one.
        Rule(("ec2:DescribeImages",), ("*",)),
        *CREATE_IMAGE,
        Rule(
            ("ec2:CreateTags",),
            (EC2_IMAGE, EC2_SNAPSHOT),
            {"StringEquals": {"ec2:CreateAction": "CreateImage"}},
            WHY_TAG_ON_CREATE,
        ),
    ),
    # The fleet's functions (statemachine/fleet.py).
    "resolve_targets": (
        Rule(("ec2:DescribeInstances",), ("*",)),
        # Member accounts are named in the fleet's input; only the member stack's role there.
        MEMBER_ROLES,
        # In this account's other Regions: is ResetAccess deployed there?
        Rule(
            ("states:DescribeStateMachine",),
            (MEMBER_MACHINES,),
            why=WHY_OTHER_REGIONS,
        ),
        Rule(
            ("dynamodb:PutItem",),
            ("{lock_table_arn}",),
            FLEET_COUNTER_ONLY,
        ),
    ),
    # A target in another Region (statemachine/fleet.py StartElsewhere, CheckElsewhere): this
    # account's ResetAccess in any Region, or a member account's through its role.
    "start_elsewhere": (
        Rule(
            ("states:StartExecution",),
            (MEMBER_MACHINES,),
            why=WHY_OTHER_REGIONS,
        ),
        MEMBER_ROLES,
    ),
    "check_elsewhere": (
        Rule(
            ("states:DescribeExecution",),
            (MEMBER_MACHINE_EXECUTIONS,),
            why=WHY_OTHER_REGIONS,
        ),
        MEMBER_ROLES,
    ),
    "publish_fleet_result": (
        Rule(("ssm:PutParameter",), (FLEET_RESULTS_ARN,), why=WHY_FLEET_RESULTS),
        Rule(("dynamodb:DeleteItem",), ("{lock_table_arn}",), FLEET_COUNTER_ONLY),
    ),
    # Started by EventBridge when an execution is aborted, times out or fails: it does what
    # Rollback, Cleanup and RecordFailure would have done, for that execution.
    "janitor": (
        Rule(
            ("states:DescribeExecution", "states:GetExecutionHistory"),
            ("arn:{partition}:states:{region}:{account}:execution:{state_machine_name}:*",),
            why=WHY_EXECUTIONS,
        ),
        # The lock names the execution holding it: release it only for that one.
        Rule(("dynamodb:GetItem",), ("{lock_table_arn}",)),
        *_distinct(*ROLLBACK, *CLEANUP, *RECORD_FAILURE),
    ),
}

# Phases that change something mark themselves in flight in the lock table while they run in a
# Parallel branch, and the failure path closes and reads those marks before it acts, all with
# UpdateItem (lambdas/logic/inflight.py). Cleanup only deletes by tag, and ReattachRootVolume and
# RestoreInstance do what Rollback does: they need no mark.
MARKS_IN_FLIGHT = (
    "copy_root_volume",
    "replace_root",
    "create_key",
    "prepare_network",
    "launch_helper",
    "stop_instance",
    "backup",
    "detach_volume",
    "create_password_ami",
)
READS_IN_FLIGHT = ("rollback", "cleanup", "janitor")
# The endings seal the marks for good (inflight.seal): no late invocation begins after them.
SEALS_IN_FLIGHT = ("publish_result", "record_failure", "janitor")
# Only the executions' in-flight items, never a lock or a breaker (dynamodb:LeadingKeys).
IN_FLIGHT_ITEMS: Conditions = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": (in_flight_key("*"),)}
}


def _with_in_flight_marks(name: str, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    if name not in MARKS_IN_FLIGHT + READS_IN_FLIGHT + SEALS_IN_FLIGHT:
        return rules
    return (*rules, Rule(("dynamodb:UpdateItem",), ("{lock_table_arn}",), IN_FLIGHT_ITEMS))


PERMISSIONS: Mapping[str, tuple[Rule, ...]] = {
    name: _with_in_flight_marks(name, rules) for name, rules in _PHASE_PERMISSIONS.items()
}


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a resource or condition template; a name the stack does not provide is an error."""
    try:
        return template.format_map(values)
    except KeyError as missing:
        raise KeyError(f"permissions template {template!r} needs {missing}") from None


def render_conditions(conditions: Conditions, values: Mapping[str, str]) -> dict[str, object]:
    """The condition block of a statement, with templates in its values filled."""
    return {
        operator: {
            key: (
                [render(v, values) for v in value]
                if isinstance(value, tuple)
                else render(value, values)
            )
            for key, value in keys.items()
        }
        for operator, keys in conditions.items()
    }


def rules_for(handler: str) -> tuple[Rule, ...]:
    """The rules of one function; a function the table does not know is a synth error."""
    try:
        return PERMISSIONS[handler]
    except KeyError:
        raise KeyError(
            f"no permissions for handler {handler!r}: add it to PERMISSIONS in "
            "stacks/permissions.py (one entry per lambdas/handlers module)"
        ) from None
