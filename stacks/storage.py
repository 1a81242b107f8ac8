"""Where ResetAccess keeps state: the KMS key for the keys it stores, and the lock table."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from lambdas.names import KEY_PARAMETERS, LOCK_EXPIRY, LOCK_KEY, PASSWORD_PARAMETERS

# Administration without use: the account can manage (and IAM can delegate managing) the key,
# but reading secrets needs the statements below. Spelled out: no `kms:*`.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


# Parameters (by name pattern) whose encryption with the key IAM may open to people or instances.
PUBLISHED_SSH_KEYS = f"{KEY_PARAMETERS}/*"
WINDOWS_PASSWORDS = f"{PASSWORD_PARAMETERS}/*"


def _through_ssm_for(*names: str) -> dict[str, dict[str, object]]:
    """Only inside Parameter Store calls, only for parameters named like `names`."""
    parameter = f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter"
    return {
        "StringEquals": {"kms:ViaService": f"ssm.{Aws.REGION}.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": [f"{parameter}{n}" for n in names]},
    }


class Storage(Construct):
    """The stack's KMS key and the per-instance lock table."""

    def __init__(self, scope: Construct, construct_id: str, *, key_alias: str) -> None:
        super().__init__(scope, construct_id)

        account = iam.AccountRootPrincipal()
        self.key = kms.Key(
            self,
            "Key",
            description="ResetAccess: encrypts the SSH private keys it stores in Parameter Store",
            alias=key_alias,
            enable_key_rotation=True,
            # Published keys stay readable after the stack is removed; deleting it is a choice.
            removal_policy=RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AdministerWithoutUse",
                        principals=[account],
                        actions=list(KEY_ADMIN_ACTIONS),
                        resources=["*"],
                    ),
                    # People get their key with `aws ssm get-parameter --with-decryption`: IAM
                    # may grant that for the published secrets only, never for pending keys.
                    iam.PolicyStatement(
                        sid="ReadPublishedSecretsThroughSsm",
                        principals=[account],
                        actions=["kms:Decrypt"],
                        resources=["*"],
                        conditions=_through_ssm_for(PUBLISHED_SSH_KEYS, WINDOWS_PASSWORDS),
                    ),
                    # Windows online: AWS's EC2Rescue tool, on the instance, stores the new
                    # password with this key; the instance's role must also allow it in IAM.
                    iam.PolicyStatement(
                        sid="StoreWindowsPasswordsThroughSsm",
                        principals=[account],
                        actions=["kms:Encrypt", "kms:GenerateDataKey"],
                        resources=["*"],
                        conditions=_through_ssm_for(WINDOWS_PASSWORDS),
                    ),
                ]
            ),
        )

        self.lock_table = dynamodb.Table(
            self,
            "LockTable",
            partition_key=dynamodb.Attribute(name=LOCK_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # A lock an execution could not release expires instead of blocking the instance.
            time_to_live_attribute=LOCK_EXPIRY,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True,
            ),
            # Locks hold instance IDs and execution ARNs, no secrets: AWS's managed key suffices
            # and spares every lock user a grant on the stack key.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def allow_use(self, role: iam.IRole, actions: list[str], conditions: dict[str, object]) -> None:
        """Let one function's role use the key under its IAM rule's conditions (inside
        Parameter Store calls, or SNS's for the stack's topic)."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[role],
                actions=actions,
                resources=["*"],
                conditions=conditions,
            )
        )
