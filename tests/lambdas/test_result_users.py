"""The published result names only users who really got the key, and why others did not."""

from __future__ import annotations

from lambdas.logic.results import success_result

PLAN = {
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:ra:x",
    "InstanceId": "i-0123456789abcdef0",
    "Mode": "offline",
    "Platform": "linux",
    "StartedAt": "2023-11-14T22:13:20.000Z",
    "KeyParameter": "/ec2/keypair/key-0123",
}


def test_refused_users_are_not_reported_as_having_the_key() -> None:
    rescue = {
        "ok": True,
        "users": [
            {
                "name": "ec2-user",
                "uid": 1000,
                "files": [],
                "added": False,
                "refused": "/home/ec2-user/.ssh is a symlink leading to /root/.ssh " + "x" * 500,
            },
            {"name": "admin", "uid": 1002, "files": [], "added": True},
        ],
        "key_users": ["admin"],
    }
    result = success_result({"plan": PLAN, "rescue": rescue})
    assert result["Users"] == ["admin"]
    assert list(result["RefusedUsers"]) == ["ec2-user"]
    assert result["RefusedUsers"]["ec2-user"].startswith("/home/ec2-user/.ssh is a symlink")
    assert len(result["RefusedUsers"]["ec2-user"]) <= 300


def test_a_report_without_key_users_still_leaves_refused_users_out() -> None:
    rescue = {
        "ok": True,
        "users": [
            {"name": "alice", "added": False, "refused": "owned by bob"},
            {"name": "bob", "added": True},
        ],
    }
    result = success_result({"plan": PLAN, "rescue": rescue})
    assert result["Users"] == ["bob"] and result["RefusedUsers"] == {"alice": "owned by bob"}
