"""The critical path of the real ASL under the model's stated latencies (no timing here)."""

from __future__ import annotations

import copy

from local.critical_path import CASES, PATHS, ours, runbook
from statemachine.definition import definition


def test_the_asl_stays_ahead_of_the_sequential_runbook() -> None:
    for path, chosen in PATHS.items():
        if not chosen.like_runbook:
            continue
        for case in CASES:
            figures, theirs = ours(path, case), runbook(path, case)
            assert figures["total_s"] < theirs["total_s"], (path, case)
            assert figures["downtime_s"] < theirs["downtime_s"], (path, case)


def test_stopping_after_the_helper_launch_trades_some_run_time_for_less_downtime() -> None:
    asl = definition()
    at_once = copy.deepcopy(asl)
    # The target's branch without its wait for the helper: it stops as the run starts.
    target = next(
        b for b in at_once["States"]["Prepare"]["Branches"] if "StopInstance" in b["States"]
    )
    del target["States"]["WaitHelperLaunched"]
    target["StartAt"] = "StopInstance"

    later, early = ours("linux-offline", asl=asl), ours("linux-offline", asl=at_once)
    # Stopped at once, the detached root waits for the helper's SSM agent while down (about
    # 10 s on median latencies, 52 s on pessimistic ones); stopped later, the run ends later.
    assert later["downtime_s"] < early["downtime_s"] - 5
    assert early["total_s"] < later["total_s"] < early["total_s"] + 30
    tail, tail_early = (ours("linux-offline", "pessimistic", a) for a in (asl, at_once))
    assert tail["downtime_s"] < tail_early["downtime_s"] - 40


def test_replace_root_is_down_for_one_reboot_only() -> None:
    offline, swap = ours("linux-offline"), ours("replace-root")
    assert swap["downtime_s"] < offline["downtime_s"] / 2


def test_the_helper_is_online_before_the_root_volume_is_detached() -> None:
    # So the median downtime holds no wait for the helper (README, How it works).
    from local.critical_path import LATENCIES, Run

    run = Run(PATHS["linux-offline"], "median", LATENCIES)
    ours("linux-offline", run=run)
    left = {name: end for name, _, end, _ in run.trace}
    assert left["WaitHelperReady"] < left["WaitRootDetached"]
