"""The ResetAccess stack: the composition root that wires the constructs of each concern."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from constructs import Construct

from lambdas.names import DEFAULT_ALARM_PREFIX, STACK_NAME
from stacks.context import ContextError
from stacks.fleet import FleetWorkflow
from stacks.fleet_scope import FleetScope
from stacks.functions import Environment, PhaseFunctions, resource_values
from stacks.helper import HelperIdentity
from stacks.member import MemberRole, fleet_account_from
from stacks.operations import Monitoring, Notifications, cooldown_seconds_from
from stacks.project import KEY_ALIAS
from stacks.rescue_document import RescueDocument
from stacks.storage import Storage
from stacks.triggers import Triggers
from stacks.workflow import Workflow
from statemachine.phases import FLEET_PHASES, JANITOR, PHASES

KEY_ALIAS_NAME = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")


def key_alias_from(scope: Construct, stack_name: str) -> str:
    """The `kmsAlias` context value; by default alias/reset-access for the stack of the default
    name and alias/<stack name> for another copy, so that two copies never claim one alias."""
    alias = scope.node.try_get_context("kmsAlias")
    if alias is None:
        return KEY_ALIAS if stack_name == STACK_NAME else f"alias/{stack_name}"
    if (
        not isinstance(alias, str)
        or not KEY_ALIAS_NAME.match(alias)
        or alias.startswith("alias/aws/")
    ):
        raise ContextError(
            f"kmsAlias: {alias!r} is not a KMS alias name like alias/reset-access "
            "(letters, digits, / _ -; alias/aws/ is AWS's)"
        )
    return alias


def alarm_prefix_from(scope: Construct, stack_name: str = STACK_NAME) -> str:
    """The `alarmPrefix` context value (cdk.json, or `cdk deploy -c alarmPrefix=...`); for a
    copy of another name, the default prefix follows its name, so that each copy answers only
    its own alarms."""
    prefix = scope.node.try_get_context("alarmPrefix")
    prefix = DEFAULT_ALARM_PREFIX if prefix is None else str(prefix)
    if prefix == DEFAULT_ALARM_PREFIX and stack_name != STACK_NAME:
        prefix = f"{stack_name}-"
    if not prefix.strip():
        raise ContextError(
            "alarmPrefix: must not be empty (it would match every alarm in the account); "
            f"give one with -c alarmPrefix={DEFAULT_ALARM_PREFIX} or in cdk.json"
        )
    # CloudWatch alarm names: 1-255 characters, no ASCII control characters (PutMetricAlarm).
    if len(prefix) > 254 or any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise ContextError(
            f"alarmPrefix: {prefix[:40]!r} cannot begin an alarm name (at most 254 characters, "
            "no control characters)"
        )
    return prefix


class ResetAccessStack(Stack):
    """Everything ResetAccess deploys: workflow, functions, rescue document, key, lock, rules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deployment = self.node.try_get_context("deployment") or "full"
        if deployment not in ("full", "member"):
            raise ContextError("deployment: full (the default) or member")
        member = deployment == "member"
        storage = Storage(self, "Storage", key_alias=key_alias_from(self, self.stack_name))
        notifications = Notifications(
            self, "Notifications", key=storage.key, stack_name=self.stack_name
        )
        alarm_prefix = alarm_prefix_from(self, self.stack_name)
        helper = HelperIdentity(self, "Helper")
        document = RescueDocument(self, "Rescue")
        document_arn = (
            f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:document/"
            f"{document.document_name}"
        )
        fleet_scope = FleetScope.from_context(self)
        functions = PhaseFunctions(
            self,
            "Functions",
            environment=Environment(
                lock_table_name=storage.lock_table.table_name,
                kms_key_arn=storage.key.key_arn,
                rescue_document_name=document.document_name,
                helper_instance_profile_arn=helper.instance_profile.instance_profile_arn,
                helper_role_arn=helper.role.role_arn,
                notify_topic_arn=notifications.topic.topic_arn,
                alarm_cooldown_seconds=cooldown_seconds_from(self),
            ),
            storage=storage,
            resource_values=resource_values(
                lock_table_arn=storage.lock_table.table_arn,
                key_arn=storage.key.key_arn,
                document_arn=document_arn,
                helper_role_arn=helper.role.role_arn,
                topic_arn=notifications.topic_arn,
            ),
            fleet_scope=fleet_scope,
        )
        workflow = Workflow(
            self,
            "Workflow",
            functions={phase: functions.add(phase) for phase in PHASES},
            # Names the ASL may use besides function ARNs (e.g. for SDK integrations).
            values={
                "LockTableName": storage.lock_table.table_name,
                "RescueDocumentName": document.document_name,
                "KmsKeyArn": storage.key.key_arn,
                "HelperInstanceProfileArn": helper.instance_profile.instance_profile_arn,
                "HelperRoleArn": helper.role.role_arn,
            },
            state_machine_name=self.stack_name if member else None,
        )
        state_machine = workflow.state_machine
        janitor = functions.add(
            JANITOR,
            state_machine_arn=state_machine.state_machine_arn,
            extra_values={"state_machine_name": state_machine.state_machine_name},
        )
        triggers = Triggers(
            self,
            "Triggers",
            state_machine=state_machine,
            janitor=janitor,
            alarm_prefix=alarm_prefix,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            topic=notifications.topic,
            state_machine=state_machine,
            dead_letters=triggers.dead_letters,
            stack_name=self.stack_name,
            alarm_prefix=alarm_prefix,
        )

        self.state_machine = state_machine
        self.functions = functions.functions
        if member:
            role = MemberRole(
                self, "Member", state_machine=state_machine, fleet_account=fleet_account_from(self)
            ).role
            CfnOutput(self, "MemberRoleArn", value=role.role_arn, description="The fleet's way in")
            triggers.start_on_alarm(state_machine)
        else:
            fleet = FleetWorkflow(
                self,
                "Fleet",
                functions={
                    phase.name: functions.add(
                        phase,
                        state_machine_arn=state_machine.state_machine_arn,
                        extra_environment=fleet_scope.environment(),
                    )
                    for phase in FLEET_PHASES
                },
                reset_access=state_machine,
                lock_table=storage.lock_table,
                fleet_scope=fleet_scope,
            )
            triggers.start_on_alarm(fleet.state_machine)
            CfnOutput(
                self,
                "FleetStateMachineArn",
                value=fleet.state_machine.state_machine_arn,
                description="Start fleet resets here",
            )
        for name, value, description in (
            ("StateMachineArn", state_machine.state_machine_arn, "Start resets here"),
            ("LockTableName", storage.lock_table.table_name, "Per-instance locks"),
            ("RescueDocumentName", document.document_name, "SSM document of the rescue agent"),
            ("KmsKeyArn", storage.key.key_arn, "Encrypts the stored SSH private keys"),
            ("DeadLetterQueueUrl", triggers.dead_letters.queue_url, "Undeliverable events"),
            ("NotifyTopicArn", notifications.topic.topic_arn, "Finished resets are announced here"),
            ("AlarmPrefix", alarm_prefix, "Alarms named with this prefix start resets"),
            ("DashboardName", monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
        ):
            CfnOutput(self, name, value=value, description=description)
