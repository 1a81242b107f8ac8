"""Run scenarios on the embedded engine and state, from the world after, what a user cares about.

Shared by the workflow and fault tests (the `run_scenario` fixture hands out `run`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdas.names import KEY_PARAMETERS, PASSWORD_PARAMETERS, key_parameter
from local.checks import key_logs_in
from local.engine import Engine
from local.scenario import Scenario

OLD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw0c3RrZXlsb3N0a2V5bG9zdGtleWxvc3RrZXkx lost@laptop"


def linux_instance(**overrides: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "platform": "linux",
        "state": "running",
        "root_device": "/dev/xvda",
        "encrypted": False,
        "ssm": False,
        "tags": {},
        "volume": {
            "distro": "amzn2023",
            "authorized_keys_file": ".ssh/authorized_keys",
            "users": [{"name": "ec2-user", "uid": 1000, "gid": 1000, "authorized_keys": [OLD_KEY]}],
        },
    }
    instance.update(overrides)
    return instance


def windows_instance(agent: str = "ec2launch-v2", **overrides: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "platform": "windows",
        "state": "running",
        "root_device": "/dev/sda1",
        "encrypted": False,
        "ssm": False,
        "tags": {},
        "volume": {"windows_agent": agent},
    }
    instance.update(overrides)
    return instance


class Run:
    """One finished execution: its report and the engine that ran it."""

    def __init__(self, engine: Engine, report: dict[str, Any]) -> None:
        self.engine = engine
        self.report = report
        self.world = report["world"]

    def instance(self, name: str = "web") -> dict[str, Any]:
        return dict(self.world["instances"][name])

    def key(self, name: str = "web") -> str | None:
        instance_id = self.instance(name)["id"]
        parameter = self.world["parameters"].get(key_parameter(instance_id))
        return parameter["value"] if parameter else None

    def states_entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.report["history"]
            if "stateEnteredEventDetails" in e
        ]

    def mutating_calls(self) -> dict[str, int]:
        reads = ("Describe", "Get", "List")
        return {
            call: count
            for call, count in self.report["api_calls"].items()
            if not call.split(":", 1)[1].startswith(reads)
        }

    # -- what every run must leave true ------------------------------------------------------
    def assert_restored(self, name: str = "web", state: str | None = None) -> None:
        before = self.engine.world_before["instances"][name]
        after = self.instance(name)
        assert after["state"] == (state or before["state"]), after
        assert after["root_volume_id"] == before["root_volume_id"]
        assert after["root_attached_to"] == before["id"], after
        assert after["root_attached_device"] == before["root_attached_device"], after

    def assert_nothing_left(self) -> None:
        assert self.world["leftovers"] == [], self.world["leftovers"]
        # Every ending seals the run's in-flight marks: no late invocation may begin after it.
        assert self.world["open_in_flight_marks"] == [], self.world["open_in_flight_marks"]

    def assert_key_opens(self, name: str = "web", users: tuple[str, ...] = ("ec2-user",)) -> None:
        assert self.key(name), "no private key in Parameter Store"
        assert (
            self.world["parameters"][key_parameter(self.instance(name)["id"])]["type"]
            == "SecureString"
        )
        assert sorted(key_logs_in(self.report, name, self.instance(name)["id"])) == sorted(users)

    def assert_no_secret_leaked(self) -> None:
        # Keys and passwords published, and every SecureString a handler wrote on the way
        # (a failed run's pending key is deleted again, but must not have leaked either).
        secrets = [
            p["value"]
            for n, p in self.world["parameters"].items()
            if n.startswith((f"{KEY_PARAMETERS}/", f"{PASSWORD_PARAMETERS}/"))
        ]
        secrets += self.engine.secrets_written
        places = {
            "history": json.dumps(self.report["history"]),
            "output": json.dumps(self.report["output"]),
            "notifications": json.dumps(self.world.get("notifications", [])),
            "logs": self.engine.logs.getvalue(),
            "SSM command parameters": json.dumps(self.engine.ssm_world.commands_sent),
            "SSM command output": json.dumps(
                [(i.stdout, i.stderr) for i in self.engine.ssm_world.invocations.values()]
            ),
        }
        for secret in secrets:
            body = "".join(line for line in secret.splitlines() if "PRIVATE KEY" not in line)
            for where, text in places.items():
                for fragment in {body[:48], body[-48:]}:
                    assert fragment not in text, f"secret material found in {where}"

    def assert_one_clean_reset(self) -> None:
        """Succeeded, and whatever was retried on the way was done once: one backup (even if
        Backup ran twice), one helper, one VPC; the world back, the key opens, no lock."""
        assert self.report["status"] == "SUCCEEDED", self.report["cause"]
        self.assert_restored()
        self.assert_nothing_left()
        self.assert_key_opens()
        self.assert_no_secret_leaked()
        assert self.world["locks"] == {}
        assert len(self.world["backups"]["images"]) == 1
        assert self.report["api_calls"].get("ec2:RunInstances", 0) == 1
        assert self.report["api_calls"].get("ec2:CreateVpc", 0) == 1

    def assert_one_clean_replacement(self) -> None:
        """Mode replace-root succeeded, each thing made once whatever was retried: one copy,
        one replacement task, one helper, one VPC, one backup snapshot; never stopped; the
        instance boots from the copy, which the key opens; the old root kept."""
        assert self.report["status"] == "SUCCEEDED", self.report["cause"]
        calls = self.report["api_calls"]
        for call in ("RunInstances", "CreateVpc"):
            assert calls.get(f"ec2:{call}", 0) == 1, (call, calls.get(f"ec2:{call}"))
        # A retried copy or task call carries the first one's ClientToken: EC2 makes no second
        # (a second copy would also be left over, below).
        assert len(self.engine.ssm_world.ebs.tasks) == 1
        assert calls.get("ec2:StopInstances", 0) == 0
        before = self.engine.world_before["instances"]["web"]
        after = self.instance()
        assert after["state"] == "running" and self.world["reboots"]["web"] == 1
        assert after["booting_from"] == self.report["output"]["RootVolumeId"]
        assert list(self.world["kept_root_volumes"]) == [before["root_volume_id"]]
        assert len(self.world["backups"]["snapshots"]) == 1
        self.assert_nothing_left()
        self.assert_key_opens()
        self.assert_no_secret_leaked()
        assert self.world["locks"] == {}

    def assert_refused(self, field: str, reason: str, attempted: tuple[str, ...] = ()) -> None:
        """Preflight refused the input, naming the field and why; nothing changed."""
        assert self.report["status"] == "FAILED"
        assert self.states_entered() == ["Preflight", "ReadRefusal", "Refused"]
        cause = self.report["cause"]
        assert field in cause and reason in cause, cause
        # A sentence for a person, not the function's error JSON with its stack trace.
        assert not cause.startswith("{") and "stackTrace" not in cause, cause
        self.assert_unchanged(attempted)

    def assert_unchanged(self, attempted: tuple[str, ...] = ()) -> None:
        """A refused or no-op run: the world is exactly as before and nothing was mutated
        (attempted: calls that were made and refused by AWS, like a conditional put)."""
        assert self.world["instances"] == self.engine.world_before["instances"]
        assert self.world["authorized_keys"] == self.engine.world_before["authorized_keys"]
        assert self.world["parameters"] == self.engine.world_before["parameters"]
        assert self.world["backups"] == {"images": [], "snapshots": []}
        self.assert_nothing_left()
        mutated = {call for call in self.mutating_calls() if call not in attempted}
        assert mutated == set(), mutated


RunScenario = Callable[..., Run]


def run(
    instances: dict[str, Any] | None = None,
    input: Any = None,
    faults: list[dict[str, Any]] | None = None,
    abort_at: str | None = None,
    prepare: Callable[[Engine], None] | None = None,
    copies: int = 1,
    eventual_consistency: Any = None,
    workdir: Path | None = None,
) -> Run:
    """Run one scenario (by default: one Linux instance, reset offline) to its end; the
    volumes stay in `workdir` when one is given, for the test to read after."""
    scenario = Scenario.from_dict(
        {
            "instances": copy.deepcopy(instances or {"web": linux_instance()}),
            "input": input if input is not None else {"InstanceId": "@web"},
            "faults": faults or [],
            **({"abort_at": abort_at} if abort_at else {}),
            **({"eventual_consistency": eventual_consistency} if eventual_consistency else {}),
        }
    )
    engine = Engine(scenario, prepare=prepare, copies=copies, workdir=workdir)
    return Run(engine, engine.run())
