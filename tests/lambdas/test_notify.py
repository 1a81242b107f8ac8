"""Notifications: a message that cannot go out changes nothing, subjects fit SNS, and a janitor
that fails tells a person before Lambda's retries and the dead-letter queue."""

from __future__ import annotations

import importlib
import io
from typing import Any

import pytest

from lambdas import runtime
from lambdas.logic import notify
from lambdas.runtime import Seams
from local.seams import LambdaContext


class Topic:
    """Stands in for the SNS client: keeps what was published, or refuses."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = refuse

    def publish(self, **request: Any) -> dict[str, Any]:
        if self.refuse:
            raise self.refuse
        self.sent.append(request)
        return {"MessageId": str(len(self.sent))}


def test_a_refused_publish_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(runtime.logger.registered_handler, "stream", log)
    topic = Topic(refuse=RuntimeError("AuthorizationError"))
    assert notify.publish(topic, "arn:aws:sns:us-east-1:1:t", "subject", "message") is None
    assert "notification not sent" in log.getvalue() and "AuthorizationError" in log.getvalue()


def test_no_topic_no_message() -> None:
    topic = Topic()
    assert notify.publish(topic, "", "subject", "message") is None
    assert topic.sent == []


def test_subject_fits_sns() -> None:
    """SNS Publish: a subject under 100 characters, with no line break or control character."""
    topic = Topic()
    notify.publish(topic, "arn:t", "é\n" + "x" * 200, "m" * 10_000)
    (sent,) = topic.sent
    assert len(sent["Subject"]) == 99 and sent["Subject"].startswith("??x")
    assert len(sent["Message"]) == notify.MESSAGE_LIMIT


def test_a_failing_janitor_tells_a_person_and_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("LOCK_TABLE_NAME", "locks"),
        ("KMS_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:key/k"),
        ("RESCUE_DOCUMENT_NAME", "doc"),
        ("HELPER_INSTANCE_PROFILE_ARN", "arn:aws:iam::123456789012:instance-profile/h"),
        ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:ResetAccess-Notifications"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    janitor = importlib.reload(importlib.import_module("lambdas.handlers.janitor"))
    topic = Topic()
    monkeypatch.setattr(janitor, "client", lambda service: topic if service == "sns" else None)

    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("EC2 said no")

    monkeypatch.setattr(janitor, "clean_up_after", broken)
    arn = "arn:aws:states:us-east-1:123456789012:execution:ResetAccess:run-1"
    with pytest.raises(RuntimeError, match="EC2 said no"):
        context = LambdaContext("ResetAccess-Janitor", "arn:j", "r-1", seams=Seams())
        janitor.handler({"detail": {"executionArn": arn, "name": "run-1"}}, context)
    (sent,) = topic.sent
    assert sent["Subject"] == "ResetAccess: janitor failed, NEEDS ATTENTION"
    assert arn in sent["Message"] and "RuntimeError: EC2 said no" in sent["Message"]
    assert f"aws stepfunctions describe-execution --execution-arn {arn}" in sent["Message"]


@pytest.mark.parametrize(
    ("mode", "downtime", "says"),
    [
        ("replace-root", 41.6, "Downtime: 42 s (one reboot, the root volume replaced)."),
        ("replace-root", None, "Downtime: one reboot (EC2 gave no task times to measure it)."),
        ("offline", 75.2, "Downtime: 75 s (stopped, then started again)."),
        ("online", 0.0, "Downtime: none (the instance was not stopped)."),
    ],
)
def test_a_success_says_how_long_the_instance_was_down(
    mode: str, downtime: float | None, says: str
) -> None:
    result = {
        "InstanceId": "i-0123456789abcdef0",
        "Mode": mode,
        "DowntimeSeconds": downtime,
        "ExecutionArn": "arn:aws:states:us-east-1:111122223333:execution:ResetAccess:x",
        "KeyParameter": "/ec2rl/openssh/i-0123456789abcdef0/key",
    }
    _, message = notify.succeeded(result)
    assert says in message.splitlines()
