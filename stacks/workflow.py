"""The Standard state machine: statemachine/definition.py's JSON, with the stack's function ARNs
and values substituted by CloudFormation."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.functions import LOG_RETENTION
from stacks.nag import acknowledge, wildcard_finding
from stacks.permissions import ALL_RESOURCES_REASON
from statemachine.definition import placeholders, render
from statemachine.phases import Phase


class Workflow(Construct):
    """The ResetAccess state machine and what it may invoke: our functions, nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[Phase, lambda_.IFunction],
        values: Mapping[str, str],
        state_machine_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        substitutions = {p.placeholder: f.function_arn for p, f in functions.items()}
        substitutions.update(values)
        definition = render()
        # CloudFormation would leave an unknown ${Name} in the definition as it is, and Step
        # Functions would fail the Task (or the state) that uses it at run time.
        unknown = sorted(placeholders(definition) - set(substitutions))
        if unknown:
            raise ValueError(
                f"the workflow uses ${{{', '.join(unknown)}}}, which the stack gives no function "
                "or value"
            )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The /aws/vendedlogs/ prefix keeps CloudWatch's account-wide log resource policy
            # from growing with each state machine that logs.
            log_group_name=f"/aws/vendedlogs/states/{scope.node.id}-{construct_id}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            description="ResetAccess state machine: invokes the phase functions",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
        )
        invocable = [f.function_arn for f in functions.values()]
        # Versions and aliases too (`:*`), in case the ASL invokes a qualified ARN.
        qualified = [f"{arn}:*" for arn in invocable]
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=invocable + qualified)
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Fixed in member deployments, where the fleet names it from another account.
            state_machine_name=state_machine_name,
            # The same text the local engine runs (local/engine.py), placeholders and all.
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # Execution data (each state's input and output) already lives in the
                # execution history; copying it to logs would double where it can leak from,
                # with a different retention and access policy, and cost per byte.
                include_execution_data=False,
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.role,
            {
                **{
                    wildcard_finding(self.role, arn): [
                        "Versions and aliases of one phase function of this stack (ARN:*), "
                        "for a Task that invokes a qualified ARN."
                    ]
                    for arn in qualified
                },
                wildcard_finding(self.role, "*"): [
                    ALL_RESOURCES_REASON.format(
                        actions="X-Ray tracing and CloudWatch Logs vended-log delivery, which "
                        "CDK adds for tracing_enabled and logs"
                    )
                ],
            },
        )
