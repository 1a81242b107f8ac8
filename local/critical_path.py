"""How long a reset takes in AWS, computed from the real workflow definition and stated latencies.

The embedded engine takes no time for EC2 to stop an instance or boot a helper, so wall time
there says nothing about AWS. This walks the definition (statemachine/definition.py; Parallel states
take their slowest branch) with a table of typical AWS latencies, and does the same for the
sequence AWSSupport-StartEC2RescueWorkflow documents (docs/runbook.md), so the two can be compared
under the same assumptions. Change a latency and both figures move; change the ASL and ours does.

    python -m local.critical_path
"""

from __future__ import annotations

from typing import Any

from statemachine.definition import definition

# Seconds, typical for a t3.small helper and an 8 GiB gp3 root in one AZ.
LATENCY = {
    "network": 6.0,  # VPC, subnet, IGW, route table, security group: ~10 API calls
    "launch": 20.0,  # RunInstances until running
    "ssm_online": 60.0,  # Ubuntu boot until the SSM agent reports Online
    "stop": 45.0,  # StopInstances until stopped
    "start": 25.0,  # StartInstances until running
    "detach": 6.0,  # DetachVolume until available
    "attach": 6.0,  # AttachVolume until attached
    "ami_call": 1.5,  # CreateImage returns (the AMI finishes in the background)
    "ami_wait": 240.0,  # CreateImage until the AMI is available
    "rescue": 4.0,  # SendCommand until the agent's report (agent itself ~0.1 s)
    "terminate": 45.0,  # TerminateInstances until the helper's ENI is gone
    "lambda": 0.3,  # one task's invocation and its API calls
    "key": 1.5,  # RSA-4096 generation in a 1 GB function
    "cfn_stack": 150.0,  # CloudFormation stack with VPC and helper, until complete
    "cfn_delete": 120.0,  # deleting that stack
    "install_tool": 30.0,  # installing EC2Rescue on the helper
}

# What each of our Task states waits for, beyond one Lambda invocation.
OUR_STATES = {
    "PrepareNetwork": "network",
    "LaunchHelper": "launch",
    "WaitHelperReady": "ssm_online",
    "WaitHelperLaunched": None,
    "StopInstance": None,
    "WaitStopped": "stop",
    "Backup": "ami_call",
    "DetachRootVolume": None,
    "WaitRootDetached": "detach",
    "CreateKey": "key",
    "AttachToHelper": None,
    "WaitAttachedToHelper": "attach",
    "RunRescue": None,
    "WaitRescue": "rescue",
    "DetachFromHelper": None,
    "WaitDetachedFromHelper": "detach",
    "ReattachRootVolume": None,
    "WaitReattached": "attach",
    "RestoreInstance": None,
    "WaitInitialState": "start",
    "CleanUp": "terminate",
}

# Polls that wait for a state of another branch of the same Parallel to end.
WAITS_FOR_STATE = {"WaitHelperLaunched": "LaunchHelper"}

# AWSSupport-StartEC2RescueWorkflow's steps, in its order (docs/runbook.md), all in sequence.
SEED_STEPS = [
    ("describe instance and volume", "lambda"),
    ("create helper stack", "cfn_stack"),
    ("wait for SSM", "ssm_online"),
    ("stop instance", "stop"),
    ("backup AMI", "ami_wait"),
    ("install EC2Rescue", "install_tool"),
    ("detach root", "detach"),
    ("attach to helper", "attach"),
    ("sleep", None),
    ("offline script", "rescue"),
    ("stop helper", "stop"),
    ("detach from helper", "detach"),
    ("reattach", "attach"),
    ("restore DeleteOnTermination", "lambda"),
    ("start instance", "start"),
    ("delete stack", "cfn_delete"),
]
SEED_SLEEP = 10.0


def _task_seconds(name: str) -> float:
    waits_for = OUR_STATES.get(name)
    return LATENCY["lambda"] + (LATENCY[waits_for] if waits_for else 0.0)


def walk(
    states: dict[str, Any], start: str, at: float, ends: dict[str, float], choices: dict[str, str]
) -> float:
    """Follow states from start at time `at`; record each state's end; return the end time."""
    name: str | None = start
    while name:
        state = states[name]
        kind = state["Type"]
        if kind == "Parallel":
            at = max(
                walk(branch["States"], branch["StartAt"], at, ends, choices)
                for branch in state["Branches"]
            )
        elif kind == "Task":
            if name in WAITS_FOR_STATE:
                # Branches are walked in order; the state waited for is in an earlier one.
                at = max(at, ends[WAITS_FOR_STATE[name]])
            at += _task_seconds(name)
        elif kind == "Choice":
            ends[name] = at
            name = choices.get(name, state.get("Default"))
            continue
        ends[name] = at
        name = None if state.get("End") or kind in ("Succeed", "Fail") else state.get("Next")
    return at


def ours(choices: dict[str, str] | None = None) -> dict[str, float]:
    asl = definition()
    ends: dict[str, float] = {}
    total = walk(asl["States"], asl["StartAt"], 0.0, ends, choices or {})
    stopped_at = ends["WaitStopped"] - LATENCY["stop"] - LATENCY["lambda"]
    return {
        "total": total,
        "back_in_service": ends["WaitInitialState"],
        "downtime": ends["WaitInitialState"] - stopped_at,
    }


def seed() -> dict[str, float]:
    at = 0.0
    stop_started = back = 0.0
    for step, latency in SEED_STEPS:
        if step == "stop instance":
            stop_started = at
        at += SEED_SLEEP if latency is None else LATENCY[latency]
        if step == "start instance":
            back = at
    return {"total": at, "back_in_service": back, "downtime": back - stop_started}


def main() -> None:
    print("assumed AWS latencies (s): " + ", ".join(f"{k}={v:g}" for k, v in LATENCY.items()))
    rows = [
        ("ResetAccess, Linux offline (this ASL)", ours()),
        ("AWSSupport-ResetAccess (sequential)", seed()),
    ]
    print(f"{'':40} {'total':>8} {'instance back':>14} {'downtime':>9}")
    for label, figures in rows:
        print(
            f"{label:40} {figures['total'] / 60:7.1f}m {figures['back_in_service'] / 60:13.1f}m"
            f" {figures['downtime'] / 60:8.1f}m"
        )


if __name__ == "__main__":
    main()
