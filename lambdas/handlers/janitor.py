"""Started by EventBridge when an execution is aborted, times out or fails: restore the
instance, clean up, record the failure and release the lock, as the workflow's own failure
path would have (lambdas/logic/janitor.py).

Waits happen inside this one invocation (up to the function's 15 minutes), not by raising for
a retry: Lambda retries an asynchronous event only twice, a minute or two apart, too few for
a detach, an attach, a start and a helper's termination one step each. Out of time, it raises
and that retry resumes from what EC2 says.
"""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.logic import notify
from lambdas.logic.ending import Notices
from lambdas.logic.janitor import clean_up_after, real_clock
from lambdas.runtime import client, logger, seams

CONFIG = Config.from_env()


@logger.inject_lambda_context(correlation_id_path="detail.name", clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The local engine, whose world changes at once, passes a clock that skips the waits.
    clock = seams(context).clock or real_clock(
        getattr(context, "get_remaining_time_in_millis", None)
    )
    notices = Notices(client("sns"), CONFIG.notify_topic_arn)
    try:
        done = clean_up_after(
            client("ec2"),
            client("ssm"),
            client("dynamodb"),
            client("stepfunctions"),
            CONFIG.lock_table_name,
            event,
            clock,
            CONFIG.state_machine_arn,
            notices,
        )
    except Exception as error:
        # Lambda retries it; a person hears now that an instance may be left stopped.
        execution_arn = str((event.get("detail") or {}).get("executionArn", "an execution"))
        subject, message = notify.janitor_failed(execution_arn, f"{type(error).__name__}: {error}")
        notify.publish(notices.sns, notices.topic_arn, subject, message)
        raise
    logger.info("janitor", extra=done)
    return done
