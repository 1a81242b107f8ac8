"""What starts work without a person: CloudWatch alarms, and failed or aborted executions."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.names import JANITOR_STATUSES
from stacks.nag import acknowledge

RETRY_ATTEMPTS = 8
MAX_EVENT_AGE = Duration.hours(2)


class Triggers(Construct):
    """The alarm rule that starts resets and the janitor rule that cleans after them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        janitor: lambda_.IFunction,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # Events EventBridge could not deliver after its retries; kept for inspection.
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            {
                "AwsSolutions-SQS3": [
                    "This queue is itself the dead-letter queue of the EventBridge targets; a "
                    "DLQ of a DLQ would only move the same undeliverable events once more."
                ]
            },
        )

        # Only alarms named with the prefix start anything; Preflight then also requires the
        # instance's opt-in tag before it changes anything.
        self.alarm_rule = events.Rule(
            self,
            "AlarmRule",
            description=f"Start resets when an alarm named {alarm_prefix}* goes to ALARM",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": [{"prefix": alarm_prefix}],
                    "state": {"value": ["ALARM"]},
                },
            ),
        )

        self.janitor_rule = events.Rule(
            self,
            "JanitorRule",
            description="Roll back and clean up after ResetAccess executions that did not finish",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": list(JANITOR_STATUSES),
                    "stateMachineArn": [state_machine.state_machine_arn],
                },
            ),
        )
        self.janitor_rule.add_target(
            targets.LambdaFunction(
                janitor,
                dead_letter_queue=self.dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
        # EventBridge's DLQ covers delivery only. A janitor run that still fails after Lambda's
        # own retries lands here too, so no unfinished cleanup disappears without a trace.
        janitor.configure_async_invoke(
            retry_attempts=2,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )

    def start_on_alarm(self, machine: sfn.IStateMachine) -> None:
        """The alarm rule's one target: the fleet where the stack has one (every instance the
        alarm watches, one ResetAccess each), else ResetAccess (one instance per alarm)."""
        self.alarm_rule.add_target(
            targets.SfnStateMachine(
                machine,
                # The whole event: the instances are read from its metric dimensions.
                input=events.RuleTargetInput.from_event_path("$"),
                dead_letter_queue=self.dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
