"""What `make demo` shows at the end: where the key is, and that it opens the instance."""

from __future__ import annotations

from typing import Any

from lambdas.names import key_parameter
from local.checks import fingerprint, key_logs_in, public_key_of


def explain(report: dict[str, Any]) -> None:
    instance = report["world"]["instances"]["web"]
    instance_id = instance["id"]
    name = key_parameter(instance_id)
    parameter = report["world"]["parameters"].get(name)
    print()
    print(
        f"instance {instance_id}: {instance['state']}, root volume "
        f"{instance['root_volume_id']} at {instance['root_attached_device']} on "
        f"{instance['root_attached_to']}"
    )
    print(
        f"left behind: {report['world']['leftovers'] or 'nothing'}; backups: "
        f"{report['world']['backups']}"
    )
    if report["status"] != "SUCCEEDED" or not parameter:
        print("no key was stored; see the error above")
        return
    public = public_key_of(parameter["value"])
    print(f"private key: {name} ({parameter['type']})")
    print(f"fingerprint: {fingerprint(public)}")
    users = key_logs_in(report, "web", instance_id)
    print(f"its public key is now in the authorized_keys of: {', '.join(users) or 'nobody'}")
    print(
        f"in AWS: aws ssm get-parameter --name {name} --with-decryption "
        "--query Parameter.Value --output text > key.pem && chmod 600 key.pem"
    )
