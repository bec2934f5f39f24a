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


def test_a_real_run_profiles_its_stages_and_counts_the_surrogate_passes(tmp_path, monkeypatch, lfw):
    """A `bench run` on the mini slice: its profile has the alignment, each target's embedding, the crafting
    of each method with its surrogate passes (OPOM: 2 steps x 10 photos x 3 people with a gradient), and the
    stages add up to the run's wall time; `write_profile` turns it into the report's profile.csv."""
    import csv

    from mini_splits import write_mini_splits

    from bench.run_profile import write_profile
    from bench.runner import RunConfig, Runner
    from bench.store import ResultStore

    splits = write_mini_splits(tmp_path / "splits", lfw)
    cfg = RunConfig(methods=["none", "opom-convex"], sources=["mobileface"], targets=["mobileface"], split="commons",
                    split_folder=str(splits), params={"opom-convex": {"steps": 2}}, craft_batch=3)
    store = ResultStore(tmp_path / "results")
    runner = Runner(cfg, store, progress=False)
    runner.run()
    profile = store.profiles()[-1]
    stages = {r["stage"]: r for r in profile["stages"]}
    assert {"embed:mobileface", "craft:opom-convex@mobileface", "craft:none@-", "protect", "score:identification",
            "write"} <= set(stages)
    # the probes of both mask sets (3 people x 5 test photos each); the clean gallery may already be cached by an
    # earlier test of the session, so its 60 + 15 photos are not counted on
    assert stages["embed:mobileface"]["items"] >= 2 * 15
    passes = stages["craft:opom-convex@mobileface"]["items"]
    assert passes > 0 and passes % 30 == 0  # whole passes over 3 people x 10 inference photos
    # craft_batch=3: the three people in one batch, so each person's t1 is a third of the batch's time
    t1 = [r["t1"] for r in store.rows() if r["method"] == "opom-convex"][0]
    assert t1 > 0
    assert stages["craft:none@-"]["items"] == 0
    assert sum(r["seconds"] for r in profile["stages"]) <= profile["wall_s"] + 1e-3
    # a second run with nothing new aligns, embeds and crafts nothing: every cell is skipped
    again = Runner(cfg, store, progress=False)
    again.run()
    second = store.profiles()[-1]
    assert not [r for r in second["stages"] if r["stage"].split(":")[0] in ("align", "embed", "craft", "protect")]
    assert second["wall_s"] < 5
    costs = {"mobileface": {"forward_s_per_image": 0.001, "forward_backward_s_per_image": 0.004},
             "mtcnn_s_per_photo": 0.1, "cores": 2}
    path = write_profile([{**profile, "unit_costs": costs}], tmp_path / "reports")
    rows = {r["stage"]: r for r in csv.DictReader(path.open())}
    assert float(rows["craft:opom-convex@mobileface"]["floor_s"]) == pytest.approx(passes * 0.004, abs=0.01)
    assert float(rows["total"]["seconds"]) == pytest.approx(profile["wall_s"], abs=0.01)
    assert float(rows["total"]["floor_s"]) > 0


def test_a_profile_without_unit_costs_leaves_its_floors_empty_and_measures_nothing(tmp_path, monkeypatch):
    """A short run records no unit costs; the report must not measure them then (a report is a function of the
    stored profiles alone, so `bench report --check` can rebuild it anywhere): modelled stages get no floor,
    and the total counts them at their measured time."""
    import csv

    import bench.run_profile as run_profile

    def refuse(*_, **__):
        raise AssertionError("write_profile measured unit costs")

    monkeypatch.setattr(run_profile, "unit_costs", refuse)
    monkeypatch.setattr(run_profile, "measure_model_costs", refuse)
    profile = {"wall_s": 10.0, "stages": [
        {"stage": "embed:mobileface", "seconds": 4.0, "items": 100},
        {"stage": "craft:opom-convex@mobileface", "seconds": 3.0, "items": 60},
        {"stage": "craft:advcloak-convex@mobileface", "seconds": 1.0, "items": 0},
        {"stage": "align:lfw", "seconds": 2.0, "items": 20}]}
    rows = {r["stage"]: r for r in csv.DictReader(run_profile.write_profile([profile], tmp_path).open())}
    assert rows["embed:mobileface"]["floor_s"] == rows["craft:opom-convex@mobileface"]["floor_s"] == ""
    assert rows["align:lfw"]["floor_s"] == ""
    assert float(rows["craft:advcloak-convex@mobileface"]["floor_s"]) == 0.0  # nothing passed through a surrogate
    assert float(rows["total"]["floor_s"]) == pytest.approx(9.0)  # 4 + 3 + 2 at their measured time, 0 for the generator
