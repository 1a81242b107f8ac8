"""What EventBridge does in AWS that moto's does not, for the stack's alarm rule: an alarm that
changes state sends an event, and a rule whose target is a state machine starts an execution.

With both, an alarm set to ALARM (SetAlarmState, or `reset-access arm-alarm` then a failing
check) starts a reset through the rule, as in AWS (local/serve.py creates the rule).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from jsonpath_ng.ext.parser import parse as parse_json_path

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


def _timestamp(when: datetime | None = None) -> str:
    return (when or datetime.now(tz=UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _metric(metric: Any, period: Any, stat: Any) -> dict[str, Any]:
    return {
        "metric": {
            "namespace": metric.namespace,
            "name": metric.metric_name,
            "dimensions": {d.name: d.value for d in metric.dimensions},
        },
        "period": int(period) if period else None,
        "stat": stat,
    }


def _metrics(alarm: Any) -> list[dict[str, Any]]:
    """The alarm's metrics as the event's detail.configuration.metrics lists them."""
    if alarm.metric_name:
        return [
            {
                "id": str(uuid.uuid4()),
                "metricStat": _metric(alarm, alarm.period, alarm.statistic),
                "returnData": True,
            }
        ]
    metrics = []
    for query in alarm.metric_data_queries:
        entry: dict[str, Any] = {"id": query.id, "returnData": query.return_data in (True, "true")}
        if query.expression:
            entry["expression"] = query.expression
        if query.metric_stat:
            stat = query.metric_stat
            entry["metricStat"] = _metric(stat.metric, stat.period, stat.stat)
        metrics.append(entry)
    return metrics


def alarm_state_change(alarm: Any, previous: dict[str, Any]) -> dict[str, Any]:
    """The event's detail (CloudWatch User Guide, "Alarm events and EventBridge")."""
    return {
        "alarmName": alarm.name,
        "state": {
            "value": alarm.state_value,
            "reason": alarm.state_reason,
            **({"reasonData": alarm.state_reason_data} if alarm.state_reason_data else {}),
            "timestamp": _timestamp(),
        },
        "previousState": previous,
        "configuration": {
            **({"description": alarm.description} if alarm.description else {}),
            "metrics": _metrics(alarm),
        },
    }


def _set_alarm_state(original: Callable[..., None]) -> Callable[..., None]:
    """AWS: "CloudWatch sends events to Amazon EventBridge whenever a CloudWatch alarm changes
    alarm state" (source aws.cloudwatch, detail-type CloudWatch Alarm State Change, the alarm's
    ARN in resources). moto changes the state and sends nothing. Only a change is an event."""

    def set_state(
        self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        before = (
            {"value": alarm.state_value, "reason": alarm.state_reason, "timestamp": _timestamp()}
            if alarm
            else None
        )
        original(self, alarm_name, reason, reason_data, state_value)
        if alarm is None or before is None or before["value"] == state_value:
            return
        from moto.events.models import events_backends

        events_backends[self.account_id][self.region_name].put_events(
            [
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": ALARM_STATE_CHANGE,
                    "Detail": json.dumps(alarm_state_change(alarm, before)),
                    "Resources": [alarm.alarm_arn],
                }
            ]
        )

    return set_state


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What the target receives: Input (literal), InputPath (a JSONPath of the event),
    InputTransformer (moto's own parser), or the whole event (EventBridge, PutTargets)."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        found = parse_json_path(target["InputPath"]).find(event)
        return json.dumps(found[0].value if found else None)
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        return json.dumps(
            EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=event,  # type: ignore[arg-type]
            )
        )
    return json.dumps(event)


def _send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    """AWS: a rule's target may be a Step Functions state machine; EventBridge starts an
    execution of it with the target's input (EventBridge User Guide, "Targets"). moto raises
    NotImplementedError for such a target; here the execution starts (its name a UUID, as
    EventBridge's are), and the rule's other targets go to moto."""

    def send(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        machines = [t for t in self.targets if ":states:" in t["Arn"]]
        if machines and self.event_pattern.matches_event(original_event):
            from moto.stepfunctions.parser.models import stepfunctions_parser_backends

            for target in machines:
                backend = stepfunctions_parser_backends[self.account_id][self.region_name]
                backend.start_execution(
                    target["Arn"], str(uuid.uuid4()), target_input(target, original_event)
                )
        others = [t for t in self.targets if t not in machines]
        if others:
            saved, self.targets = self.targets, others
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = saved

    return send


@contextlib.contextmanager
def corrections() -> Iterator[None]:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.events.models import Rule

    with (
        mock.patch.object(
            CloudWatchBackend,
            "set_alarm_state",
            _set_alarm_state(CloudWatchBackend.set_alarm_state),
        ),
        mock.patch.object(Rule, "send_to_targets", _send_to_targets(Rule.send_to_targets)),
    ):
        yield
