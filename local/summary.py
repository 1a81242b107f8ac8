"""What `python -m local run` and `make demo` print at the end, without `--report`: the outcome
and what a user needs from it (the key and its fingerprint, the users who have it, backups,
where the instance and its root volume are, what was left; a dry run's plan). What the key
opens is read from the volume after the run, not taken from the workflow's word.
"""

from __future__ import annotations

from typing import Any

from local.checks import fingerprint, key_logs_in, public_key_of
from local.scenario import Scenario


def summary(report: dict[str, Any], scenario: Scenario) -> list[str]:
    output = report.get("output") or {}
    lines = [_outcome(report, output)]
    action = output.get("Action")
    if action == "dry-run":
        lines.append("dry run: nothing was changed; the plan:")
        lines += [f"  {n}. {step}" for n, step in enumerate(output.get("Steps", []), 1)]
    elif action == "skip":
        lines += [f"skipped: {note}" for note in output.get("Notes", [])]
    for name in report["world"]["instances"]:
        lines += _instance(report, scenario, name)
    if output.get("Outcome") == "succeeded":
        lines += _result(output)
    world = report["world"]
    backups = world["backups"]
    if backups["images"] or backups["snapshots"]:
        lines.append(
            "backups: "
            + ", ".join(
                [f"AMI {i}" for i in backups["images"]]
                + [f"snapshot {s}" for s in backups["snapshots"]]
            )
        )
    lines.append(f"left behind: {', '.join(world['leftovers']) or 'nothing'}")
    if world["locks"]:
        lines.append(f"locks still held: {', '.join(world['locks'])}")
    for janitor in report.get("janitor", []):
        lines.append(f"janitor: {janitor.get('Action')} {janitor.get('Reason', '')}".rstrip())
    return lines


def _outcome(report: dict[str, Any], output: dict[str, Any]) -> str:
    line = f"outcome: {report['status']}"
    if output.get("Mode"):
        line += f" ({output['Mode']}, {output.get('Platform', 'linux')})"
    seconds = (output.get("PhaseSeconds") or {}).get("Total")
    if seconds is not None:
        line += f" in {seconds:.1f} s"
    if report.get("error"):
        line += f": {report['error']}: {report['cause']}"
    return line


def _instance(report: dict[str, Any], scenario: Scenario, name: str) -> list[str]:
    world = report["world"]
    instance = world["instances"][name]
    where = (
        f"at {instance['root_attached_device']} of {instance['root_attached_to']}"
        if instance["root_attached_to"]
        else "detached"
    )
    own = " (its own)" if instance["root_attached_to"] == instance["id"] else ""
    lines = [
        f"instance {name} ({instance['id']}): {instance['state']}, root volume "
        f"{instance['root_volume_id']} {where}{own}"
    ]
    from lambdas.names import key_parameter, password_parameter

    key = world["parameters"].get(key_parameter(instance["id"]))
    if key:
        public = public_key_of(key["value"])
        name_and_type = f"{key_parameter(instance['id'])} ({key['type']})"
        lines.append(f"  key: {name_and_type}, fingerprint {fingerprint(public)}")
        if scenario.instances[name].get("platform", "linux") == "linux":
            users = key_logs_in(report, name, instance["id"])
            lines.append(f"  the key opens it for: {', '.join(users) or 'nobody (see above)'}")
    password = world["parameters"].get(password_parameter(instance["id"]))
    if password:
        lines.append(
            f"  Administrator password: {password_parameter(instance['id'])} ({password['type']})"
        )
    return lines


def _result(output: dict[str, Any]) -> list[str]:
    lines = [f"users changed: {', '.join(output.get('Users') or []) or 'none'}"]
    for user, why in (output.get("RefusedUsers") or {}).items():
        lines.append(f"  refused {user}: {why}")
    if output.get("OnlineError"):
        lines.append(f"online reset failed first: {output['OnlineError']}")
    phases = {k: v for k, v in (output.get("PhaseSeconds") or {}).items() if k != "Total"}
    if phases:
        lines.append("seconds per phase: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    if output.get("PasswordEnabledImageId"):
        lines.append(f"password-enabled AMI: {output['PasswordEnabledImageId']}")
    if output.get("GetPassword"):
        lines.append(f"get the password: {output['GetPassword']}")
    if output.get("KeyParameter"):
        lines.append(
            f"in AWS: aws ssm get-parameter --name {output['KeyParameter']} --with-decryption "
            "--query Parameter.Value --output text > key.pem && chmod 600 key.pem"
        )
    return lines
