"""The fleet state machine, ResetAccessFleet (statemachine/fleet.py), beside ResetAccess in the
same stack, and what its role may do: invoke its two functions, start and follow ResetAccess
executions here (and in member accounts, through their role), and count the fleet's errors."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.names import FLEET_COUNTER_PREFIX, fleet_machine_name
from stacks.fleet_scope import FleetScope
from stacks.functions import LOG_RETENTION
from stacks.nag import acknowledge, wildcard_finding
from stacks.permissions import ALL_RESOURCES_REASON, render
from statemachine import fleet
from statemachine.definition import placeholders
from statemachine.phases import FLEET_PHASES

WHY_QUALIFIED = (
    "Versions and aliases of one fleet phase function of this stack (ARN:*), for a Task that "
    "invokes a qualified ARN."
)
WHY_EXECUTIONS = (
    "Executions of this stack's ResetAccess state machine only; their names are made at run "
    "time, one per instance."
)
WHY_ITERATIONS = (
    "The fleet's own Distributed Map iterations (executions of this state machine), named by "
    "Step Functions at run time."
)
WHY_MAP_RUNS = (
    "The fleet's own Map Runs (Distributed Map), named by Step Functions at run time; no other "
    "state machine's."
)


class FleetWorkflow(Construct):
    """ResetAccessFleet: a Distributed Map of ResetAccess executions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        reset_access: sfn.StateMachine,
        lock_table: dynamodb.ITable,
        fleet_scope: FleetScope | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        substitutions = {p.placeholder: functions[p.name].function_arn for p in FLEET_PHASES}
        substitutions["LockTableName"] = lock_table.table_name
        definition = fleet.render()
        unknown = sorted(placeholders(definition) - set(substitutions))
        if unknown:
            raise ValueError(f"the fleet workflow uses ${{{', '.join(unknown)}}}, not given")
        stack = Stack.of(self)

        def states_arn(resource: str, name: str) -> str:
            return stack.format_arn(
                service="states",
                resource=resource,
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        executions = states_arn("execution", f"{reset_access.state_machine_name}:*")
        # Its own ARN, by name: a Distributed Map starts its iterations as executions of it
        # (execution:ResetAccessFleet/<label>:<id>) in Map Runs (mapRun:ResetAccessFleet/...).
        # Named after the stack (ResetAccessFleet by default), so that two copies can live in one
        # account and Region.
        name = fleet_machine_name(stack.stack_name)
        own = states_arn("stateMachine", name)
        own_executions = states_arn("execution", f"{name}/*")
        map_runs = states_arn("mapRun", f"{name}/*")
        reach = fleet_scope or FleetScope()
        member_roles = [
            render(arn, {"partition": Aws.PARTITION, "region": Aws.REGION})
            for arn in reach.role_arns()
        ]
        sync_rule = stack.format_arn(
            service="events",
            resource="rule",
            resource_name="StepFunctionsGetEventsForStepFunctionsExecutionRule",
        )
        self.role = iam.Role(
            self,
            "Role",
            description="ResetAccessFleet state machine: one ResetAccess execution per instance",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
        )
        invocable = [functions[p.name].function_arn for p in FLEET_PHASES]
        statements: list[tuple[list[str], list[str], dict[str, object] | None]] = [
            (["lambda:InvokeFunction"], invocable + [f"{arn}:*" for arn in invocable], None),
            (["states:StartExecution"], [reset_access.state_machine_arn, own], None),
            (
                ["states:DescribeExecution", "states:StopExecution"],
                [executions, own_executions],
                None,
            ),
            (["states:DescribeMapRun", "states:UpdateMapRun"], [map_runs], None),
            (["events:PutTargets", "events:PutRule", "events:DescribeRule"], [sync_rule], None),
            (
                ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                [lock_table.table_arn],
                {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{FLEET_COUNTER_PREFIX}*"]}},
            ),
            # Cross-account: the Task assumes the member stack's role there (Credentials.RoleArn).
            (["sts:AssumeRole"], member_roles, dict(reach.role_conditions()) or None),
        ]
        for actions, resources, conditions in statements:
            self.role.add_to_policy(
                iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
            )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{scope.node.id}-{construct_id}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        reasons = {f"{arn}:*": WHY_QUALIFIED for arn in invocable}
        reasons.update(
            {
                executions: WHY_EXECUTIONS,
                own_executions: WHY_ITERATIONS,
                map_runs: WHY_MAP_RUNS,
            }
        )
        reasons.update({arn: reach.role_why() for arn in member_roles if "*" in arn})
        acknowledge(
            self.role,
            {
                **{wildcard_finding(self.role, r): [why] for r, why in reasons.items()},
                wildcard_finding(self.role, "*"): [
                    ALL_RESOURCES_REASON.format(
                        actions="X-Ray tracing and CloudWatch Logs vended-log delivery, which "
                        "CDK adds for tracing_enabled and logs"
                    )
                ],
            },
        )
