"""The helper instance's identity: a role and instance profile with SSM's minimum, nothing else."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge

SSM_CORE = "AmazonSSMManagedInstanceCore"


class HelperIdentity(Construct):
    """What the helper runs as. Created once here, so no execution ever creates IAM."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            description="ResetAccess helper instance: SSM Run Command only",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(SSM_CORE)],
        )
        self.instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=self.role)
        acknowledge(
            self.role,
            {
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{SSM_CORE}]": [
                    "AWS's documented minimum for an SSM managed instance; the helper needs only "
                    "Run Command and keeping our own copy would lag AWS's updates to the agent's "
                    "needs."
                ]
            },
        )
