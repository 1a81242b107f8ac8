"""Finished worlds do not pile up in memory: two of moto's method caches held every EC2
backend a worker ever made, and the heap they kept made a test worker's last garbage
collections outlast xdist's shutdown (its SIGINT then showed as hypothesis's gc callback
ignoring a KeyboardInterrupt at the end of `make test`)."""

from __future__ import annotations

import gc

from tests.support.workflow import run


def _amis() -> int:
    from moto.ec2.models.amis import Ami

    gc.collect()
    return sum(isinstance(o, Ami) for o in gc.get_objects())


def test_finished_runs_do_not_pile_up_ec2_backends() -> None:
    # moto keeps the last world's backends until the next world starts (its reset is at the
    # start), so one is always there: what must not happen is one more per run.
    alive = []
    for _ in range(3):
        finished = run(input={"InstanceId": "@web", "DryRun": True})
        assert finished.report["status"] == "SUCCEEDED", finished.report["cause"]
        del finished
        alive.append(_amis())
    # Each new EC2 backend gets the images a world launches from (emulator.world_images).
    assert alive[0] == alive[1] == alive[2] <= 1301, alive
