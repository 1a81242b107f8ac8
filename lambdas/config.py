"""The functions' environment, read once at cold start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from lambdas.names import MEMBER_ACCOUNTS_VARIABLE, MEMBER_REGIONS_VARIABLE

# Each function's own timeout in seconds, set by the stack; the AWS clients are cut to fit it.
TIMEOUT_VARIABLE = "FUNCTION_TIMEOUT_SECONDS"
# At most one alarm-started reset per instance within this many seconds (CDK context
# alarmCooldownHours); 6 hours when unset.
COOLDOWN_VARIABLE = "ALARM_COOLDOWN_SECONDS"
DEFAULT_COOLDOWN_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Config:
    lock_table_name: str
    kms_key_arn: str
    rescue_document_name: str
    helper_instance_profile_arn: str
    state_machine_arn: str
    # Where finished resets are announced (SNS); empty: nowhere.
    notify_topic_arn: str = ""
    alarm_cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    # Where a fleet may reach (CDK context memberAccounts, memberRegions); empty: anywhere.
    member_accounts: tuple[str, ...] = ()
    member_regions: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Config:
        missing = [
            name
            for name in (
                "LOCK_TABLE_NAME",
                "KMS_KEY_ARN",
                "RESCUE_DOCUMENT_NAME",
                "HELPER_INSTANCE_PROFILE_ARN",
            )
            if not os.environ.get(name)
        ]
        if missing:
            raise RuntimeError(
                f"environment variables missing: {', '.join(missing)}; "
                "the stack sets them on every function (see stacks/functions.py)"
            )
        return cls(
            lock_table_name=os.environ["LOCK_TABLE_NAME"],
            kms_key_arn=os.environ["KMS_KEY_ARN"],
            rescue_document_name=os.environ["RESCUE_DOCUMENT_NAME"],
            helper_instance_profile_arn=os.environ["HELPER_INSTANCE_PROFILE_ARN"],
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
            notify_topic_arn=os.environ.get("NOTIFY_TOPIC_ARN", ""),
            alarm_cooldown_seconds=int(
                os.environ.get(COOLDOWN_VARIABLE) or DEFAULT_COOLDOWN_SECONDS
            ),
            member_accounts=_listed(MEMBER_ACCOUNTS_VARIABLE),
            member_regions=_listed(MEMBER_REGIONS_VARIABLE),
        )


def _listed(variable: str) -> tuple[str, ...]:
    return tuple(item for item in os.environ.get(variable, "").split(",") if item)
