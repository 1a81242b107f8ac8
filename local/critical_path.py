"""How long a reset takes in AWS: the real workflow definition walked with published latencies.

The embedded engine takes no time for EC2 to stop an instance or boot a helper, so its wall time
says nothing about AWS. This walks statemachine.definition.definition() as Step Functions runs
it: Parallel branches at once (the slowest ends the state), Choice states by the path's
choices, each Task one Lambda invocation (cold on a function's first use in the run, or when
its only environment is busy), and each poll retried on its own Retry schedule
(statemachine.policies.schedule), so a poll sees a change at its first attempt after the change.
Latencies, median and pessimistic, each with its source, are in LATENCIES and
docs/latencies.md. Where a poll's attempts happen to fall decides a few seconds, so each figure
is the mean over AWS's latencies taken from 80% to 120% of the stated ones (SPREAD).
AWSSupport-ResetAccess's documented sequence runs under the same latencies.

    python -m local.critical_path          # the table
    python -m local.critical_path --json   # per path and case: total_s, downtime_s, ...
    python -m local.critical_path --trace linux-offline [--case pessimistic]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine import policies
from statemachine.definition import definition
from statemachine.phases import CREATE_KEY, by_name
from statemachine.states import phase_of

CASES = ("median", "pessimistic")


@dataclass(frozen=True)
class Latency:
    """Seconds for one thing AWS does, in the median and the pessimistic case, and where the
    figure comes from (docs/latencies.md explains each)."""

    median: float
    pessimistic: float
    source: str

    def of(self, case: str) -> float:
        return self.median if case == "median" else self.pessimistic


_SFN = "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html"
_LAMBDA_ENV = "https://maxday.github.io/lambda-perf/"
_LAMBDA_CPU = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
_BOOT = "https://www.daemonology.net/blog/2021-08-12-EC2-boot-time-benchmarking.html"
_LAUNCH = "https://github.com/brevdev/ec2-coldboot-research"
_SSM_TAIL = "https://github.com/DataDog/stratus-red-team/issues/108"
_STOP = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html"
_WIN_PW = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/connect-rdp.html"
_EBS = "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-attaching-volume.html"
_AMI = "https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-action-create.html"
_CFN = "https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-ec2reset.html"
_WIN_TOOL = "https://repost.aws/knowledge-center/reset-admin-password"
_AGENT = "tests/rescue/bench_agent.py (python -m tests.rescue.bench_agent)"
_COLD = "local/cold_start.py (python -m local.cold_start)"
_KEY = "local/run_cost.py (python -m local.run_cost --keygen 80: RSA-3072 at 1024 MB)"
_TERMINATE = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html"
_COPY = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyVolumes.html"
_REPLACE = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceRootVolumeTask.html"

ONE_VCPU_MB = 1769
# CreateKey's RSA-3072 generation, CPU seconds on the development machine (one full core):
# median and 90th percentile of `python -m local.run_cost --keygen 80` (RSA-4096: 0.356, 0.733).
KEYGEN_SECONDS = (0.101, 0.240)
# At the function's share of a vCPU, as init times are scaled (pessimistic: init_cpu_scale's 1.5).
_KEY_SCALE = ONE_VCPU_MB / CREATE_KEY.memory_mb

LATENCIES: dict[str, Latency] = {
    # Step Functions and Lambda around every Task.
    "transition": Latency(0.05, 0.2, _SFN),
    "invoke": Latency(0.03, 0.1, _SFN),
    "calls": Latency(0.3, 1.0, _SFN),
    "lambda_environment": Latency(0.2, 0.5, _LAMBDA_ENV),
    # Init code runs at the function's share of a vCPU: 1 vCPU at 1,769 MB.
    "init_cpu_scale": Latency(1.0, 1.5, _LAMBDA_CPU),
    # EC2: the helper.
    "network": Latency(6.0, 15.0, _CFN),
    "launch": Latency(20.0, 30.0, _LAUNCH),
    "ssm_online": Latency(40.0, 150.0, _SSM_TAIL),
    "terminate": Latency(45.0, 90.0, _TERMINATE),
    # EC2: the instance. A Windows shutdown takes longer; an impaired one is forced after minutes.
    "stop_linux": Latency(45.0, 120.0, _STOP),
    "stop_windows": Latency(60.0, 180.0, _STOP),
    "start_linux": Latency(25.0, 40.0, _BOOT),
    "start_windows": Latency(25.0, 40.0, _BOOT),
    "boot_linux": Latency(22.0, 45.0, _BOOT),
    "boot_windows": Latency(120.0, 240.0, _WIN_PW),
    # EBS.
    "detach": Latency(6.0, 15.0, _EBS),
    "attach": Latency(6.0, 15.0, _EBS),
    "copy_volume": Latency(5.0, 30.0, _COPY),
    # A root volume replacement task until "succeeded": detach, attach, the instance's reboot.
    "replace_root": Latency(40.0, 150.0, _REPLACE),
    # Work inside one invocation, and the command on the helper.
    "ami_call": Latency(1.5, 3.0, _AMI),
    "key": Latency(
        round(KEYGEN_SECONDS[0] * _KEY_SCALE, 2),
        round(KEYGEN_SECONDS[1] * 1.5 * _KEY_SCALE, 2),
        _KEY,
    ),
    "rescue": Latency(4.0, 15.0, _AGENT),
    "rescue_online_linux": Latency(4.0, 15.0, _AGENT),
    "rescue_online_windows": Latency(60.0, 180.0, _WIN_TOOL),
    # The runbook's own steps.
    "ami_wait": Latency(240.0, 600.0, _AMI),
    "cfn_stack": Latency(150.0, 300.0, _CFN),
    "cfn_delete": Latency(120.0, 240.0, _CFN),
    "install_tool": Latency(30.0, 90.0, _CFN),
}

# Import to first line per handler, tracing on, as `python -m local.cold_start --runs 3` printed
# it on the development machine (one full core; Preflight, the janitor and the fleet's functions
# import pydantic for the input); init_cpu_scale and memory turn it into Lambda's.
INIT_SECONDS: dict[str, float] = {
    "publish_fleet_result": 0.264,
    "preflight": 0.223,
    "resolve_targets": 0.200,
    "janitor": 0.175,
    "check_rescue": 0.152,
    "run_rescue": 0.138,
    "publish_result": 0.124,
    "prepare_network": 0.122,
    "record_failure": 0.122,
    "create_key": 0.116,
    "check_replace_root": 0.111,
    "create_password_ami": 0.110,
    "launch_helper": 0.109,
    "check_volume": 0.109,
    "check_helper": 0.109,
    "rollback": 0.109,
    "replace_root": 0.108,
    "copy_root_volume": 0.107,
    "backup": 0.106,
    "stop_instance": 0.105,
    "check_instance": 0.104,
    "cleanup": 0.104,
    "restore_instance": 0.104,
    "detach_volume": 0.104,
    "attach_volume": 0.103,
    # Measured later, recorded by their ratio to check_volume's in the same run.
    "start_elsewhere": 0.104,
    "check_elsewhere": 0.102,
}
# What AWS does, as opposed to Step Functions and Lambda around it: these vary run to run.
VARYING = frozenset(
    {
        "network",
        "launch",
        "ssm_online",
        "terminate",
        "stop_linux",
        "stop_windows",
        "start_linux",
        "start_windows",
        "boot_linux",
        "boot_windows",
        "detach",
        "attach",
        "rescue",
        "rescue_online_linux",
        "rescue_online_windows",
        "copy_volume",
        "replace_root",
    }
)
# The factors VARYING latencies are taken at; their mean is 1, so the stated figure stays the mean.
SPREAD = tuple(0.8 + 0.4 * i / 20 for i in range(21))


@dataclass(frozen=True)
class Effect:
    """What a Task state's invocation sets going: `event` happens `after` (latency names, summed)
    seconds after the invocation's AWS call."""

    event: str
    after: tuple[str, ...]


# What each Task does beyond one invocation. Latency names ending in "_" take the path's
# platform ("stop_" -> "stop_linux").
WORK: dict[str, str] = {
    "PrepareNetwork": "network",
    "PrepareNetworkForCopy": "network",
    "BackupRunning": "ami_call",
    "CreateKeyForCopy": "key",
    "Backup": "ami_call",
    "BackupOnline": "ami_call",
    "CreateKey": "key",
    "CreateKeyOnline": "key",
    "CreatePasswordAmi": "ami_call",
}
STARTS: dict[str, tuple[Effect, ...]] = {
    "LaunchHelper": (
        Effect("helper running", ("launch",)),
        Effect("helper online", ("launch", "ssm_online")),
    ),
    "StopInstance": (Effect("stopped", ("stop_",)),),
    "DetachRootVolume": (Effect("root detached", ("detach",)),),
    "AttachToHelper": (Effect("on helper", ("attach",)),),
    "RunRescue": (Effect("rescued", ("rescue",)),),
    "RunRescueOnline": (Effect("rescued online", ("rescue_online_",)),),
    "DetachFromHelper": (Effect("off helper", ("detach",)),),
    "ReattachRootVolume": (Effect("reattached", ("attach",)),),
    "RestoreInstance": (
        Effect("running", ("start_",)),
        Effect("in service", ("start_", "boot_")),
    ),
    "CleanUp": (Effect("helper gone", ("terminate",)),),
    # Replace-root: the running root volume is copied, repaired, and swapped in by one reboot.
    "LaunchHelperForCopy": (
        Effect("helper running", ("launch",)),
        Effect("helper online", ("launch", "ssm_online")),
    ),
    "CopyRootVolume": (Effect("copy available", ("copy_volume",)),),
    "AttachCopyToHelper": (Effect("on helper", ("attach",)),),
    "RescueCopy": (Effect("rescued", ("rescue",)),),
    "DetachCopyFromHelper": (Effect("off helper", ("detach",)),),
    "ReplaceRoot": (
        Effect("root replaced", ("replace_root",)),
        Effect("in service", ("replace_root", "boot_")),
    ),
    "CleanUpHelper": (Effect("helper gone", ("terminate",)),),
}
# Polls: the event each waits for.
POLLS: dict[str, str] = {
    "WaitHelperReady": "helper online",
    "WaitHelperLaunched": "helper running",
    "WaitStopped": "stopped",
    "WaitRootDetached": "root detached",
    "WaitAttachedToHelper": "on helper",
    "WaitRescue": "rescued",
    "WaitRescueOnline": "rescued online",
    "WaitDetachedFromHelper": "off helper",
    "WaitReattached": "reattached",
    "WaitInitialState": "running",
    "CleanUp": "helper gone",
    "WaitHelperReadyForCopy": "helper online",
    "WaitCopyAvailable": "copy available",
    "WaitCopyAttached": "on helper",
    "WaitRescueCopy": "rescued",
    "WaitCopyDetached": "off helper",
    "WaitRootReplaced": "root replaced",
    "CleanUpHelper": "helper gone",
}
# Tasks that are one invocation and nothing more on the paths modelled.
INVOCATION_ONLY = frozenset({"Preflight", "PublishResult"})


@dataclass(frozen=True)
class Path:
    """One kind of run: its platform and what its Choice states choose."""

    platform: str
    choices: Mapping[str, str]
    stops: bool
    # The Task whose call takes the instance out of service.
    down_at: str = "StopInstance"

    @property
    def like_runbook(self) -> bool:
        """Whether AWSSupport-ResetAccess does the same job (it stops, it has no other way)."""
        return self.stops and self.down_at == "StopInstance"


# One entry per path; a new mode is one line here.
PATHS: dict[str, Path] = {
    "linux-offline": Path("linux", {"Route": "Prepare"}, stops=True),
    "windows-offline": Path("windows", {"Route": "Prepare"}, stops=True),
    "linux-online": Path("linux", {"Route": "BackupOnline"}, stops=False),
    "windows-online": Path("windows", {"Route": "BackupOnline"}, stops=False),
    "replace-root": Path("linux", {"Route": "PrepareCopy"}, stops=True, down_at="ReplaceRoot"),
}


class ModelError(Exception):
    """The definition cannot be walked as asked (a poll gives up, a state is not modelled)."""


@dataclass
class Run:
    """One walk: the clock's readings that matter and each function's execution environments."""

    path: Path
    case: str
    latencies: Mapping[str, Latency]
    scale: float = 1.0
    events: dict[str, float] = field(default_factory=dict)
    # Per function, each environment's busy intervals (start, end).
    environments: dict[str, list[list[tuple[float, float]]]] = field(default_factory=dict)
    cold_starts: int = 0
    stop_called: float | None = None
    # (state, entered, left, attempts) per Task, in the order walked.
    trace: list[tuple[str, float, float, int]] = field(default_factory=list)

    def seconds(self, name: str) -> float:
        if name.endswith("_"):
            name += self.path.platform
        seconds = self.latencies[name].of(self.case)
        return seconds * self.scale if name in VARYING else seconds

    def cold_seconds(self, function: str) -> float:
        phase = by_name(function)
        scale = self.seconds("init_cpu_scale") * ONE_VCPU_MB / phase.memory_mb
        return self.seconds("lambda_environment") + INIT_SECONDS[phase.handler] * scale

    def invoke(self, function: str, at: float, work: float) -> tuple[float, float]:
        """One invocation from `at`: (when its AWS call reads the world, when it returns)."""
        start = at + self.seconds("invoke")
        pool = self.environments.setdefault(function, [])
        free = next((env for env in pool if all(e <= start or s >= start for s, e in env)), None)
        if free is None:
            self.cold_starts += 1
            start += self.cold_seconds(function)
            free = []
            pool.append(free)
        reads = start + work + self.seconds("calls") / 2
        end = start + work + self.seconds("calls")
        free.append((at, end))
        return reads, end


def _task(run: Run, name: str, state: dict[str, Any], at: float) -> float:
    function = phase_of(state)
    if (
        name not in WORK
        and name not in STARTS
        and name not in POLLS
        and name not in INVOCATION_ONLY
    ):
        raise ModelError(f"{name}: not modelled; add it to WORK, STARTS, POLLS or INVOCATION_ONLY")
    work = run.seconds(WORK[name]) if name in WORK else 0.0
    reads, end = run.invoke(function, at, work)
    if name == run.path.down_at:
        run.stop_called = reads
    for effect in STARTS.get(name, ()):
        run.events.setdefault(effect.event, reads + sum(run.seconds(a) for a in effect.after))
    attempts = 1
    if name in POLLS:
        wanted = run.events.get(POLLS[name])
        if wanted is None:
            raise ModelError(f"{name}: waits for {POLLS[name]!r}, which nothing before it starts")
        retrier = next(r for r in state["Retry"] if policies.NOT_READY in r["ErrorEquals"])
        waits = iter(policies.schedule(retrier))
        while reads < wanted:
            wait = next(waits, None)
            if wait is None:
                raise ModelError(f"{name}: gives up after {sum(policies.schedule(retrier)):g} s")
            # A retry is a transition too; the next attempt starts after the Retry's wait.
            reads, end = run.invoke(function, end + wait + run.seconds("transition"), 0.0)
            attempts += 1
    run.trace.append((name, at, end, attempts))
    return end


def walk(run: Run, states: dict[str, Any], start: str, at: float) -> float:
    """Follow `states` from `start` at time `at` and return when the branch ends."""
    name: str | None = start
    while name:
        state = states[name]
        at += run.seconds("transition")
        kind = state["Type"]
        if kind == "Parallel":
            at = max(walk(run, b["States"], b["StartAt"], at) for b in state["Branches"])
        elif kind == "Task":
            at = _task(run, name, state, at)
        elif kind == "Choice":
            name = run.path.choices.get(name, state["Default"])
            continue
        if state.get("End") or kind in ("Succeed", "Fail"):
            return at
        name = state["Next"]
    return at


def ours(
    path: str, case: str = "median", asl: dict[str, Any] | None = None, run: Run | None = None
) -> dict[str, float]:
    """total_s, downtime_s, back_in_service_s (0 where the instance never stops) for one path:
    one walk with `run`, else the mean of walks over SPREAD."""
    asl = asl or definition()
    if run is not None:
        return _walk_path(path, asl, run)
    walks = [_walk_path(path, asl, Run(PATHS[path], case, LATENCIES, f)) for f in SPREAD]
    return {key: sum(w[key] for w in walks) / len(walks) for key in walks[0]}


def _walk_path(path: str, asl: dict[str, Any], run: Run) -> dict[str, float]:
    chosen = run.path
    total = walk(run, asl["States"], asl["StartAt"], 0.0)
    figures = {"total_s": total, "downtime_s": 0.0, "back_in_service_s": 0.0}
    if chosen.stops:
        if run.stop_called is None or "in service" not in run.events:
            raise ModelError(f"{path}: the instance never stops or never comes back")
        back = run.events["in service"]
        figures.update(back_in_service_s=back, downtime_s=back - run.stop_called)
    figures["cold_starts"] = float(run.cold_starts)
    # Each attempt makes at least one AWS call: what quick polls cost in calls.
    figures["invocations"] = float(sum(attempts for *_, attempts in run.trace))
    return figures


# AWSSupport-StartEC2RescueWorkflow's steps in its order (docs/runbook.md), all in sequence.
# aws:createImage waits until the AMI is available, so both AMIs are waited for.
RUNBOOK_STEPS: tuple[tuple[str, str | None], ...] = (
    ("describe instance and volume", "calls"),
    ("create helper stack", "cfn_stack"),
    ("wait for SSM", "ssm_online"),
    ("stop instance", "stop_"),
    ("backup AMI", "ami_wait"),
    ("install EC2Rescue", "install_tool"),
    ("detach root", "detach"),
    ("attach to helper", "attach"),
    ("sleep 10 s", None),
    ("offline script", "rescue"),
    ("stop helper", "stop_linux"),
    ("detach from helper", "detach"),
    ("reattach", "attach"),
    ("password-enabled AMI (Windows)", "ami_wait"),
    ("restore DeleteOnTermination", "calls"),
    ("start instance", "start_"),
    ("delete stack", "cfn_delete"),
)


def runbook(path: str, case: str = "median") -> dict[str, float]:
    """The runbook's sequence under the same latencies (offline paths only: it has no other);
    a sequence without polls needs no SPREAD."""
    run = Run(PATHS[path], case, LATENCIES)
    at = stop_called = back = 0.0
    for step, latency in RUNBOOK_STEPS:
        if step.endswith("(Windows)") and run.path.platform != "windows":
            continue
        if step == "stop instance":
            stop_called = at
        at += 10.0 if latency is None else run.seconds(latency)
        if step == "start instance":
            back = at + run.seconds("boot_")
    return {"total_s": at, "downtime_s": back - stop_called, "back_in_service_s": back}


def figures() -> dict[str, dict[str, dict[str, float]]]:
    """Per path, per case: our figures, and the runbook's for the paths that stop."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for path, chosen in PATHS.items():
        out[path] = {case: _rounded(ours(path, case)) for case in CASES}
        if chosen.like_runbook:
            out[f"runbook {path}"] = {case: _rounded(runbook(path, case)) for case in CASES}
    return out


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in values.items() if k.endswith("_s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.critical_path", description=__doc__)
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    parser.add_argument("--trace", choices=sorted(PATHS), help="each Task's times on one path")
    parser.add_argument("--case", choices=CASES, default="median", help="the case --trace walks")
    args = parser.parse_args(argv)
    try:
        if args.trace:
            return _print_trace(args.trace, args.case)
        table = figures()
    except ModelError as error:
        print(f"critical_path: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    keys = ("total_s", "downtime_s", "back_in_service_s")
    print(f"{'seconds: total / down / back':28}" + "".join(f"{c:>22}" for c in CASES))
    for path, cases in table.items():
        cells = "".join(f"{' / '.join(f'{cases[c][k]:.0f}' for k in keys):>22}" for c in CASES)
        print(f"{path:28}{cells}")
    print("latencies and sources: docs/latencies.md; each Task's times: --trace PATH")
    return 0


def _print_trace(path: str, case: str) -> int:
    run = Run(PATHS[path], case, LATENCIES)
    figures = ours(path, case, run=run)
    for name, entered, left, attempts in sorted(run.trace, key=lambda row: row[1]):
        print(f"{entered:7.1f} {left:7.1f}  {name:24} {attempts:3} attempt(s)")
    print(", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
