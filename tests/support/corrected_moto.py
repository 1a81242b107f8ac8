"""moto with the local engine's corrections and no Lambda, for tests of the emulation itself."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import boto3
from moto import mock_aws

from local import emulator


@contextlib.contextmanager
def corrected_moto() -> Iterator[tuple[emulator.SsmWorld, Any, str]]:
    """(the SSM world, an EC2 client, a Linux image to launch) while moto runs corrected."""
    os.environ.setdefault("AWS_DEFAULT_REGION", emulator.REGION)
    world = emulator.SsmWorld(document_name="ResetAccess-Rescue")

    def no_lambda(function: object, event: object = None) -> tuple[str, bool, str]:
        return "{}", False, ""

    with mock_aws(), emulator.corrections(world, no_lambda):
        ec2 = boto3.client("ec2", region_name=emulator.REGION)
        image = next(
            i["ImageId"]
            for i in ec2.describe_images(Owners=["amazon"])["Images"]
            if not i.get("Platform")
        )
        yield world, ec2, image
