"""`make acceptance`: prove the deployed stack resets access in your own account.

    python -m acceptance [--region R] [--profile P] [--subnet subnet-...] [--instance-profile NAME]

Launches a throwaway Amazon Linux 2023 instance with a key pair it then deletes, resets it
offline through the deployed state machine, logs in with the stored key and runs `id`, resets
it online too if SSM reaches it, and deletes everything it made, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from acceptance.account import Options
from acceptance.report import explain
from acceptance.run import Run
from acceptance.ssh import SshLogin
from acceptance.steps import SMALLEST_NITRO
from lambdas.names import STACK_NAME


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m acceptance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--region", help="AWS Region (default: your profile's or AWS_REGION)")
    root.add_argument("--profile", help="named AWS profile (default: AWS_PROFILE or default)")
    root.add_argument("--stack", default=STACK_NAME, help="the deployed stack's name")
    root.add_argument(
        "--subnet",
        help="default: the default VPC's; a private subnet is reached "
        "through an EC2 Instance Connect Endpoint (AWS CLI v2)",
    )
    root.add_argument("--arch", choices=sorted(SMALLEST_NITRO), default="x86_64")
    root.add_argument("--instance-type", help="default: t3.nano, or t4g.nano for arm64")
    root.add_argument(
        "--instance-profile",
        help="instance profile (name or ARN) with AmazonSSMManagedInstanceCore: "
        "lets the online reset run too",
    )
    root.add_argument(
        "--ssh-cidr",
        help="allow SSH from this CIDR (default: this machine's "
        "public IP, from checkip.amazonaws.com)",
    )
    root.add_argument("--no-online", action="store_true", help="skip the online reset")
    return root


@contextlib.contextmanager
def ctrl_c_waits() -> Iterator[None]:
    """During clean-up a Ctrl-C would leave resources behind: say so and carry on."""

    def refuse(signum: int, frame: Any) -> None:
        print("cleaning up what the run made; please wait", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, refuse)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        # AWS_REGION as the AWS CLI reads it; boto3 itself reads only AWS_DEFAULT_REGION.
        region = args.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=args.profile, region_name=region)
        if not session.region_name:
            print("acceptance: no AWS Region: pass --region or set AWS_REGION", file=sys.stderr)
            return 2
        if session.get_credentials() is None:
            print(
                "acceptance: no AWS credentials found: run `aws configure`, set AWS_PROFILE, "
                "or pass --profile",
                file=sys.stderr,
            )
            return 2
    except BotoCoreError as error:
        print(f"acceptance: {explain(error, 'credentials')}", file=sys.stderr)
        return 2
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    # SIGTERM (a CI job cancelled) cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    options = Options(
        stack=args.stack,
        subnet_id=args.subnet,
        architecture=args.arch,
        instance_type=args.instance_type,
        instance_profile=args.instance_profile,
        ssh_cidr=args.ssh_cidr,
        online=not args.no_online,
        profile=args.profile,
    )
    run = Run(
        lambda service: session.client(service, config=config),
        SshLogin(),
        options,
        shield=ctrl_c_waits,
    )
    print(f"acceptance run {run.run_id} in {session.region_name} (stack {args.stack})")
    try:
        report = run()
    except KeyboardInterrupt:
        report = run.report
    for line in report.lines():
        print(line)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
