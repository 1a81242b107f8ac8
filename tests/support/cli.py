"""Running the installed `reset-access` command as a user would: a process of its own, an
environment with no AWS configuration of the developer's, and what it printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

COMMAND = Path(sys.executable).parent / "reset-access"
# The tree under test, ahead of the editable install (its finder comes after PYTHONPATH): a
# venv shared between work trees would otherwise run the tree it was installed from.
TREE = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        return self.out + self.err


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """PATH and a HOME without AWS files: no profile, credentials or Region leak in."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(TREE),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        # No instance metadata lookups for credentials or Region from a test machine.
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "200",
    }
    env.update(extra)
    return env


def aws_env(home: Path, endpoint: str, **extra: str) -> dict[str, str]:
    return clean_env(
        home,
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **extra,
    )


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> Ran:
    done = subprocess.run(
        [str(COMMAND), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def one_line_error(ran: Ran) -> str:
    """The error the command printed: exactly one line on stderr, and no traceback."""
    assert "Traceback" not in ran.said, ran.said
    lines = [line for line in ran.err.splitlines() if line.strip()]
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("reset-access: "), ran.err
    return lines[0]


def interrupted_follow(arn: str, env: dict[str, str], header: str) -> tuple[int, str]:
    """`reset-access follow ARN` sent Ctrl-C right after its header line (while it makes its
    client or reads the history); its exit code and standard error."""
    following = subprocess.Popen(
        [str(COMMAND), "follow", arn, "--poll-seconds", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert following.stdout is not None
    assert following.stdout.readline().startswith(header)
    following.send_signal(signal.SIGINT)
    _, err = following.communicate(timeout=60)
    return following.returncode, err


class Served:
    """The served endpoint, the engine behind it, and the environment a user would have."""

    def __init__(self, url: str, engine: Any, home: Path) -> None:
        self.url = url
        self.engine = engine
        self.env = aws_env(home, url)

    def cli(self, *args: str) -> Ran:
        """The command, polling fast where it follows an execution."""
        following = "start" in args or "follow" in args
        return run([*args, "--poll-seconds", "0.2"] if following else list(args), self.env)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
