"""The critical path of the real ASL under the benchmark's stated latencies (no timing here)."""

from __future__ import annotations

from local.critical_path import LATENCY, ours, seed


def test_helper_boot_and_instance_stop_overlap() -> None:
    figures = ours()
    # Stopping, backing up and detaching hide behind the helper's boot, which sets the pace.
    helper_ready = LATENCY["network"] + LATENCY["launch"] + LATENCY["ssm_online"]
    assert figures["total"] < helper_ready + LATENCY["stop"] + LATENCY["start"] + 60


def test_the_asl_stays_ahead_of_the_sequential_runbook() -> None:
    assert ours()["total"] < seed()["total"]
    assert ours()["downtime"] < seed()["downtime"]


def test_stopping_after_the_helper_launch_shortens_downtime_not_the_run(monkeypatch) -> None:
    from local import critical_path

    later = ours()
    monkeypatch.setattr(critical_path, "WAITS_FOR_STATE", {})
    at_once = ours()

    saved = LATENCY["network"] + LATENCY["launch"]
    assert later["downtime"] <= at_once["downtime"] - saved
    assert later["total"] == at_once["total"]
