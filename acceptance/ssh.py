"""Log in over SSH with the stored private key and run `id`: the proof a user cares about."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acceptance.account import Account


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    proxy: str | None = None  # ssh's ProxyCommand


def instance_address(instance: dict[str, Any], run: Account) -> Target:
    """The public IP, or in a private subnet the EC2 Instance Connect Endpoint's tunnel."""
    from acceptance.report import Failure
    from acceptance.steps import LOGIN_USER

    endpoint = run.facts.get("endpoint")
    if run.facts.get("private") and endpoint:
        region = run.client("ec2").meta.region_name
        proxy = (
            f"aws ec2-instance-connect open-tunnel --instance-id %h "
            f"--instance-connect-endpoint-id {endpoint} --region {region}"
        )
        if run.options.profile:
            proxy += f" --profile {run.options.profile}"
        return Target(instance["InstanceId"], 22, LOGIN_USER, proxy)
    address = instance.get("PublicIpAddress")
    if not address:
        raise Failure(
            f"{instance['InstanceId']} has no public IP: its subnet must assign "
            "one (pass --subnet with a public subnet)"
        )
    return Target(address, 22, LOGIN_USER)


class SshLogin:
    """`ssh -i KEY USER@HOST id`, retried until sshd answers (the instance just restarted)."""

    def __init__(
        self, target: Callable[[dict[str, Any], Account], Target] = instance_address
    ) -> None:
        self.target = target

    def __call__(self, private_key: str, instance: dict[str, Any], run: Account) -> str:
        from acceptance.report import Failure

        if not shutil.which("ssh"):
            raise Failure("no `ssh` command on this machine: install the OpenSSH client")
        target = self.target(instance, run)
        with tempfile.TemporaryDirectory(prefix="reset-access-acceptance-") as directory:
            key = Path(directory) / "key"
            key.touch(mode=0o600)
            key.write_text(private_key if private_key.endswith("\n") else private_key + "\n")
            argv = [
                "ssh",
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                f"UserKnownHostsFile={Path(directory) / 'known_hosts'}",
                "-o",
                "ConnectTimeout=10",
                "-i",
                str(key),
                "-p",
                str(target.port),
            ]
            if target.proxy:
                argv += ["-o", f"ProxyCommand={target.proxy}"]
            argv += [f"{target.user}@{target.host}", "id"]
            last: list[str] = ["no attempt"]

            def logged_in() -> bool:
                try:
                    done = subprocess.run(
                        argv, capture_output=True, text=True, timeout=60, check=False
                    )
                except subprocess.TimeoutExpired:
                    last[:] = ["no answer within 60 s"]
                    return False
                last[:] = [
                    done.stdout.strip()
                    if done.returncode == 0
                    else (done.stderr.strip().splitlines() or ["exit 255"])[-1]
                ]
                return done.returncode == 0

            try:
                run.wait(
                    logged_in,
                    run.options.login_timeout,
                    f"cannot log in as {target.user}@{target.host}:{target.port} "
                    f"with the stored key",
                )
            except Failure as failure:
                hint = (
                    "may you ec2-instance-connect:OpenTunnel?"
                    if target.proxy
                    else "is port 22 reachable from here?"
                )
                raise Failure(f"{failure} (ssh said: {last[0]}); {hint}") from None
            return f"ssh {target.user}@{target.host} with the stored key ran `id`: {last[0]}"
