"""Operating the stack: the SNS topic every finished reset is announced on, the alarms that
call a person (failed executions, undeliverable events), and the dashboard.

Context (cdk.json or `cdk deploy -c name=value`): `notifyEmail` subscribes an address to the
topic; `alarmCooldownHours` bounds alarm-started resets (lambdas/logic/breaker.py).
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.config import DEFAULT_COOLDOWN_SECONDS
from lambdas.logic.telemetry import NAMESPACE
from stacks.context import ContextError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Our own alarms are named <stack>Ops-...: never with the alarm prefix, or each would start a reset.
OPS_SUFFIX = "Ops"


def notify_email_from(scope: Construct) -> str | None:
    """The `notifyEmail` context value: an address to subscribe, or None."""
    value = scope.node.try_get_context("notifyEmail")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not EMAIL.match(value):
        raise ContextError(f"notifyEmail: {value!r} is not an email address")
    return value


def cooldown_seconds_from(scope: Construct) -> int:
    """The `alarmCooldownHours` context value in seconds (6 hours when unset)."""
    value = scope.node.try_get_context("alarmCooldownHours")
    if value is None:
        return DEFAULT_COOLDOWN_SECONDS
    try:
        hours = float(value)
    except (TypeError, ValueError):
        hours = -1.0
    if not 0 < hours <= 24 * 30:
        raise ContextError(f"alarmCooldownHours: {value!r} is not a number of hours in (0, 720]")
    return int(hours * 3600)


class Notifications(Construct):
    """The topic, encrypted with the stack's key; the functions publish to it."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.Key, stack_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        # Named, so that the key policy can name its ARN without a reference to the topic (the
        # topic refers to the key: a reference back would be a cycle).
        name = f"{stack_name}-Notifications"
        self.topic_arn = f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:{name}"
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=name,
            display_name="ResetAccess",
            master_key=key,
            enforce_ssl=True,
        )
        # CloudWatch alarm actions publish with the key too (SNS Developer Guide, "Enable
        # compatibility between event sources from AWS services and encrypted topics"); only
        # for this account's alarms, on this topic.
        alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
        email = notify_email_from(self)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class Monitoring(Construct):
    """Alarms on failed executions and on the dead-letter queue (to the topic), and the
    dashboard of executions, outcomes, downtime and phases."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        state_machine: sfn.StateMachine,
        dead_letters: sqs.Queue,
        stack_name: str,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        ops = f"{stack_name}{OPS_SUFFIX}"
        if ops.startswith(alarm_prefix):
            raise ContextError(
                f"alarmPrefix: {alarm_prefix!r} would match the stack's own alarms "
                f"({ops}-...); choose a prefix they do not start with"
            )
        five_minutes = Duration.minutes(5)
        failed = cloudwatch.MathExpression(
            expression="failed + timedOut",
            using_metrics={
                "failed": state_machine.metric_failed(period=five_minutes, statistic="Sum"),
                "timedOut": state_machine.metric_timed_out(period=five_minutes, statistic="Sum"),
            },
            label="failed or timed out",
            period=five_minutes,
        )
        self.failed_alarm = failed.create_alarm(
            self,
            "FailedExecutions",
            alarm_name=f"{ops}-FailedExecutions",
            alarm_description=(
                "A ResetAccess execution failed or timed out. Its result says whether it rolled "
                "back; the topic has the message with the command that finishes the job: "
                f"aws stepfunctions list-executions --state-machine-arn "
                f"{state_machine.state_machine_arn} --status-filter FAILED"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm = dead_letters.metric_approximate_number_of_messages_visible(
            period=five_minutes, statistic="Maximum"
        ).create_alarm(
            self,
            "DeadLetters",
            alarm_name=f"{ops}-DeadLetters",
            alarm_description=(
                "An alarm's start or a janitor run could not be delivered or failed after its "
                "retries: an instance may be left stopped. Read the events with: aws sqs "
                f"receive-message --queue-url {dead_letters.queue_url} "
                "--max-number-of-messages 10 --attribute-names All"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failed_alarm, self.dead_letter_alarm):
            alarm.add_alarm_action(actions.SnsAction(topic))
        self.dashboard = self._dashboard(ops, state_machine, dead_letters)

    def _dashboard(
        self, name: str, state_machine: sfn.StateMachine, dead_letters: sqs.Queue
    ) -> cloudwatch.Dashboard:
        hour = Duration.hours(1)

        def search(metric: str, statistic: str, label: str) -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression=(
                    f'SEARCH(\'Namespace="{NAMESPACE}" MetricName="{metric}"\', '
                    f"'{statistic}', 3600)"
                ),
                label=label,
                period=hour,
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(period=hour, statistic="Sum"),
                    state_machine.metric_succeeded(period=hour, statistic="Sum"),
                    state_machine.metric_failed(period=hour, statistic="Sum"),
                    state_machine.metric_aborted(period=hour, statistic="Sum"),
                    state_machine.metric_timed_out(period=hour, statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Resets by outcome, mode and path",
                left=[search("Resets", "Sum", "resets")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Downtime and total (seconds, max)",
                left=[search("DowntimeSeconds", "Maximum", "downtime")],
                right=[search("TotalSeconds", "Maximum", "total")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Seconds per phase (average)",
                left=[search("PhaseSeconds", "Average", "phase")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Needs a person",
                alarms=[self.failed_alarm, self.dead_letter_alarm],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue",
                left=[dead_letters.metric_approximate_number_of_messages_visible(period=hour)],
                width=12,
            ),
        )
        return dashboard
