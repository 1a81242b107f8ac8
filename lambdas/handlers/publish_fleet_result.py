"""The fleet's last phase: every instance's outcome, written to Parameter Store in pages that
fit a standard parameter, and the fleet's status."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from lambdas.config import Config
from lambdas.logic.fleet import fleet_parameter, outcome_of, pages
from lambdas.names import LOCK_KEY
from lambdas.runtime import client, phase

CONFIG = Config.from_env()


@phase
def publish_fleet_result(event: dict[str, Any]) -> dict[str, Any]:
    lines = [outcome_of(item) for item in event.get("results") or []]
    counts = Counter(line["Outcome"] for line in lines)
    parameter = fleet_parameter(str(event["execution"]))
    ssm = client("ssm")
    written = pages(lines)
    for number, page in enumerate(written, start=1):
        ssm.put_parameter(Name=f"{parameter}/{number}", Value=page, Type="String", Overwrite=True)
    summary = {
        "Total": len(lines),
        **{
            outcome: counts[outcome]
            for outcome in ("Succeeded", "NotChanged", "Failed", "NotAttempted")
        },
        "Pages": [f"{parameter}/{n}" for n in range(1, len(written) + 1)],
    }
    ssm.put_parameter(
        Name=parameter,
        Value=json.dumps(summary, separators=(",", ":")),
        Type="String",
        Overwrite=True,
    )
    client("dynamodb").delete_item(
        TableName=CONFIG.lock_table_name, Key={LOCK_KEY: {"S": str(event["fleet"]["CounterKey"])}}
    )
    result: dict[str, Any] = {
        "Status": "SUCCEEDED",
        "ResultParameter": parameter,
        "Summary": summary,
        "Instances": lines,
    }
    if counts["Failed"] or counts["NotAttempted"]:
        failed = [line["InstanceId"] for line in lines if line["Outcome"] == "Failed"]
        skipped = [line["InstanceId"] for line in lines if line["Outcome"] == "NotAttempted"]
        result["Status"] = "FAILED"
        result["Error"] = "MaxErrorsExceeded" if skipped else "InstancesFailed"
        result["Cause"] = (
            f"{len(failed)} of {len(lines)} instances failed ({', '.join(failed[:10])}"
            f"{', ...' if len(failed) > 10 else ''})"
            + (
                f"; {len(skipped)} not attempted after MaxErrors was exceeded "
                f"({', '.join(skipped[:10])}{', ...' if len(skipped) > 10 else ''})"
                if skipped
                else ""
            )
            + f". Each reset that started rolled its instance back; see {parameter}"
        )
    return result


handler = publish_fleet_result
