"""A member deployment (`cdk deploy -c deployment=member -c fleetAccount=<ID>`): in each target
account and Region, ResetAccess itself, and a role that the fleet's account may assume only to
find instances and to start, follow and stop ResetAccess executions there."""

from __future__ import annotations

import re

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.names import MEMBER_ROLE_NAME, STACK_NAME
from stacks.context import ContextError
from stacks.nag import acknowledge, wildcard_finding
from stacks.permissions import ALL_RESOURCES_REASON

ACCOUNT_ID = re.compile(r"^\d{12}$")
# Step Functions' managed rule for `.sync` tasks, made in the account whose role the Task uses.
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"


def fleet_account_from(scope: Construct) -> str:
    """The `fleetAccount` context value: the account whose ResetAccessFleet starts resets here."""
    account = scope.node.try_get_context("fleetAccount")
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        raise ContextError(
            "fleetAccount: the 12-digit account ID of the fleet's account is required "
            "for a member deployment (cdk deploy -c deployment=member -c fleetAccount=...)"
        )
    return account


class MemberRole(Construct):
    """ResetAccess-FleetMember-<Region>, assumable by the fleet account's ResetAccess roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        fleet_account: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        executions = (
            f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:"
            f"{state_machine.state_machine_name}:*"
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"{MEMBER_ROLE_NAME}-{Aws.REGION}",
            description="ResetAccessFleet in the fleet account: find instances, run ResetAccess",
            # Only the fleet account's roles of the ResetAccess stack (its fleet state machine
            # and ResolveTargets function), not any principal of that account.
            assumed_by=iam.AccountPrincipal(fleet_account).with_conditions(
                {
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{Aws.PARTITION}:iam::{fleet_account}:role/"
                        f"{STACK_NAME}-*"
                    }
                }
            ),
        )
        for actions, resources in (
            (["ec2:DescribeInstances"], ["*"]),
            (["states:StartExecution"], [state_machine.state_machine_arn]),
            (["states:DescribeExecution", "states:StopExecution"], [executions]),
            (
                ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                [stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
            ),
        ):
            self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
        acknowledge(
            self.role,
            {
                wildcard_finding(self.role, "*"): [
                    ALL_RESOURCES_REASON.format(actions="ec2:DescribeInstances (target resolution)")
                ],
                wildcard_finding(self.role, executions): [
                    "Executions of this stack's ResetAccess state machine only; the fleet names "
                    "each one at run time, one per instance."
                ],
            },
        )
