"""Bad input to ``bench regress``, ``train``, ``data split``/``run --split``, the result store and trained
checkpoints, as a careless or hostile user gives it (issue 20, classes 2-5): a check that cannot fail is
refused before any measuring, NaN and infinity never pass a range check, names never become paths out
of their folder, and damaged files are one clear line, not a traceback."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import BenchError
from bench.paths import data_dir, repo_root
from bench.regress import BASELINE, Baseline, RegressionConfig, compare

COMMITTED = json.loads((repo_root() / BASELINE).read_text())


def refused(result, *expected: str) -> str:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for text in expected:
        assert text in result.output, result.output
    return result.output


# --- class 2: bench regress ---------------------------------------------------------------------------

@pytest.fixture()
def baseline_at(tmp_path, monkeypatch):
    """Point `bench regress` at a baseline in tmp_path; measuring is replaced by ``measured`` (set per test)."""
    (tmp_path / "tests").mkdir()
    monkeypatch.setattr("bench.paths.repo_root", lambda: tmp_path)
    monkeypatch.setattr("bench.regress.repo_root", lambda: tmp_path)
    state = {"measured": None}

    def measure(cfg, work, progress=False):
        if state["measured"] is None:
            raise AssertionError("measuring started although the baseline is unusable")
        return state["measured"]

    monkeypatch.setattr("bench.regress.measure", measure)

    def write(data):
        path = tmp_path / BASELINE
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return path

    return write, state


def _with(change):
    data = copy.deepcopy(COMMITTED)
    change(data)
    return data


@pytest.mark.parametrize("name,text,expected", [
    ("truncated", json.dumps(COMMITTED)[:200], "not usable"),
    ("nan rate", json.dumps(_with(lambda d: d["rates"]["none|mobileface"].update(top1=float("nan")))), "none|mobileface top1"),
    ("infinite rate", json.dumps(_with(lambda d: d["rates"]["none|mobileface"].update(top5=float("inf")))), "none|mobileface top5"),
    ("string rate", json.dumps(_with(lambda d: d["rates"]["none|mobileface"].update(top1="95"))), "none|mobileface top1"),
    ("rate over 100", json.dumps(_with(lambda d: d["rates"]["none|mobileface"].update(top1=250.0))), "<= 100"),
    ("missing top5", json.dumps(_with(lambda d: d["rates"]["none|mobileface"].pop("top5"))), "none|mobileface"),
    ("nan tolerance", json.dumps(_with(lambda d: d["config"].update(tolerance_points=float("nan")))), "tolerance_points"),
    ("negative tolerance", json.dumps(_with(lambda d: d["config"].update(tolerance_points=-1))), "tolerance_points"),
    ("no rates", json.dumps(_with(lambda d: d.update(rates={}))), "no rates"),
    ("a list", "[]", "expected the keys"),
    ("other config", json.dumps(_with(lambda d: d["config"].update(n_people=3))), "n_people"),
])
def test_a_broken_baseline_is_one_error_before_any_measuring(baseline_at, name, text, expected):
    write, _ = baseline_at
    write(text)
    out = refused(CliRunner().invoke(main, ["regress"]), "regression baseline", expected)
    assert len(out.strip().splitlines()) == 1, out


def test_the_baselines_tolerance_is_the_one_applied(baseline_at):
    write, state = baseline_at
    moved = copy.deepcopy(COMMITTED["rates"])
    moved["noise|mobileface"]["top1"] += 1.0  # one point: within 2, beyond 0.5
    state["measured"] = moved
    write(_with(lambda d: d["config"].update(tolerance_points=0.5)))
    refused(CliRunner().invoke(main, ["regress"]), "noise|mobileface top1", "tolerance 0.5")
    write(COMMITTED)
    ok = CliRunner().invoke(main, ["regress"])
    assert ok.exit_code == 0 and "within 2 points" in ok.output, ok.output


def test_a_work_folder_holding_earlier_cells_is_refused_not_reused(tmp_path, monkeypatch):
    from bench.regress import measure

    rows = json.loads((Path(__file__).parent / "fixtures" / "runner_reference_rows.json").read_text())
    from bench.store import ResultStore

    ResultStore(tmp_path / "results").put(rows[0], rows[0])  # a real cell left by an earlier run
    monkeypatch.setattr("bench.runner.Runner", lambda *a, **k: (_ for _ in ()).throw(AssertionError("cells reused")))
    with pytest.raises(BenchError, match="would be reused, not measured"):
        measure(RegressionConfig(), tmp_path)


def test_a_measured_nan_is_never_within_the_tolerance():
    rates = COMMITTED["rates"]
    broken = copy.deepcopy(rates)
    broken["none|mobileface"]["top1"] = float("nan")
    assert any(p.startswith("none|mobileface top1") and "not a finite rate" in p for p in compare(rates, broken, 2.0))


def test_the_committed_baseline_passes_its_own_checks():
    assert Baseline.load(cfg=RegressionConfig()).tolerance == RegressionConfig().tolerance_points


# --- class 3: minutes, budgets ------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["nonsense", "cuda:99"])
def test_train_refuses_a_device_that_does_not_exist_here(device, monkeypatch):
    monkeypatch.setattr("bench.training.trainer.train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("training started")))
    r = CliRunner().invoke(main, ["train", "advfaces", "--source", "mobileface", "--device", device])
    refused(r, f"--device '{device}' is not a device here", "available: cpu")


@pytest.mark.parametrize("minutes", ["nan", "inf", "-1", "0", "x"])
def test_train_refuses_minutes_that_are_not_finite_and_positive(minutes, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("bench.training.trainer.train", no_training)
    r = CliRunner().invoke(main, ["train", "advfaces", "--source", "mobileface", "--minutes", minutes])
    assert r.exit_code == 2 and "--minutes" in r.output and "finite number > 0" in r.output, r.output


class SplitThenStop:
    """Stands in for bench.runner.Runner: loads the run's splits as the real one does first, then stops
    (a bad option must be refused by then; nothing is measured)."""

    def __init__(self, config, store=None, progress=True):
        from bench.data.splits import load_split

        load_split(config.split), load_split(config.gallery_split)
        raise AssertionError("the run started despite a bad option")


@pytest.mark.parametrize("budget", ["1e9", "49500"])
def test_run_refuses_budgets_beyond_the_largest_possible_mask(budget, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path))
    monkeypatch.setattr("bench.runner.Runner", SplitThenStop)
    r = CliRunner().invoke(main, ["run", "--methods", "none", "--source", "mobileface", "--target", "mobileface",
                                  "--budget", budget])
    refused(r, "--budget takes finite numbers > 0 and <= 49467.4")


def test_the_shared_check_refuses_nan_inf_and_bools():
    from bench.validate import budget, finite, minutes

    for bad in (float("nan"), float("inf"), "nan", "-inf", True, None, "1,2"):
        with pytest.raises(BenchError, match="finite number"):
            finite(bad, "x")
    assert budget("1200") == 1200.0 and minutes(0.5) == 0.5


# --- class 3, result store: a NaN rate is a damaged cell, not a blank -----------------------------------

def test_a_stored_cell_with_a_nan_rate_is_set_aside_not_tabled(tmp_path):
    from bench.store import DamagedResult, ResultStore

    rows = json.loads((Path(__file__).parent / "fixtures" / "runner_reference_rows.json").read_text())
    store = ResultStore(tmp_path)
    for row in rows[:2]:  # real cells of the reference run
        store.put(row, row)
    victim = sorted(store.cells.glob("*.json"))[0]
    text = victim.read_text()
    cell = json.loads(text)
    cell["top1_protection"] = float("nan")
    victim.write_text(json.dumps(cell))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = store.rows()
    assert len(kept) == 1 and all(r["cell"] != victim.stem for r in kept)
    assert any(issubclass(w.category, DamagedResult) and "top1_protection" in str(w.message) for w in caught)
    assert list(store.quarantine.iterdir()), "the damaged cell is kept for inspection"


# --- class 5: names used as paths ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../x", "a/b", "/tmp/x", ".hidden", "..", "", "x" * 101, "a\\b"])
def test_split_names_that_are_paths_are_refused_before_any_work(name, tmp_path, monkeypatch):
    splits = tmp_path / "a" / "b" / "splits"
    splits.mkdir(parents=True)
    monkeypatch.setenv("BENCH_SPLITS", str(splits))
    monkeypatch.setattr("bench.data.person_split.make_person_split",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("photos aligned despite a bad name")))
    r = CliRunner().invoke(main, ["data", "split", name, "--from", "vggface2-train"])
    refused(r, "cannot be used as a file name")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [], "nothing written anywhere"


def test_run_refuses_a_split_name_that_is_a_path(tmp_path, monkeypatch):
    splits = tmp_path / "a" / "splits"
    splits.mkdir(parents=True)
    shutil.copy(repo_root() / "datasets" / "splits" / "commons.csv", tmp_path / "x.csv")  # a real split, outside
    monkeypatch.setenv("BENCH_SPLITS", str(splits))
    monkeypatch.setattr("bench.runner.Runner", SplitThenStop)
    r = CliRunner().invoke(main, ["run", "--methods", "none", "--source", "mobileface", "--target", "mobileface",
                                  "--split", "../../x"])
    refused(r, "split name '../../x' cannot be used as a file name")


@pytest.mark.parametrize("file", ["../../../etc/passwd", "/etc/passwd", "Aaron_Peirsol/../../x.jpg", "C:/x.jpg"])
def test_a_split_row_naming_a_path_outside_its_dataset_is_one_error(file, tmp_path):
    from bench.data.splits import load_split

    lines = (repo_root() / "datasets" / "splits" / "commons.csv").read_text().splitlines()[:6]
    lines[3] = f"lfw,Aaron_Peirsol,test,{file}"  # a real split with one row changed
    (tmp_path / "evil.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"evil.csv: line 4: file .* not a relative path inside its dataset"):
        load_split("evil", tmp_path)


def test_a_split_from_a_folder_stores_no_absolute_path(tmp_path, monkeypatch):
    people = tmp_path / "people" / "Colin_Powell"
    people.mkdir(parents=True)
    for f in sorted((data_dir() / "lfw" / "images" / "Colin_Powell").glob("*.jpg"))[:3]:
        shutil.copy(f, people / f.name)
    splits = tmp_path / "splits"
    monkeypatch.setenv("BENCH_SPLITS", str(splits))
    r = CliRunner().invoke(main, ["data", "split", "mine", "--from", str(tmp_path / "people"), "--inference", "1",
                                  "--test", "2"])
    assert r.exit_code == 0, r.output
    stored = (splits / "mine.csv").read_text() + (splits / "mine.json").read_text()
    assert str(tmp_path) not in stored and "folder:../people" in stored
    from bench.data.splits import load_split

    split = load_split("mine")
    assert split.dataset == str((tmp_path / "people").resolve()) and len(split.rows) == 3


# --- class 4: a checkpoint whose bytes are garbage but whose card was made to match ----------------------

def test_a_garbage_checkpoint_with_a_matching_card_is_one_line(tmp_path, monkeypatch):
    shipped = repo_root() / "methods" / "weights" / "mobileface"
    folder = tmp_path / "generators" / "mobileface"
    folder.mkdir(parents=True)
    garbage = b"\x00not a safetensors file" * 64
    (folder / "advcloak-convex.safetensors").write_bytes(garbage)
    card = json.loads((shipped / "advcloak-convex.json").read_text())  # the real card, its sha256 set to match
    card["sha256"] = hashlib.sha256(garbage).hexdigest()
    (folder / "advcloak-convex.json").write_text(json.dumps(card))
    monkeypatch.setenv("BENCH_GENERATORS", str(tmp_path / "generators"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted((data_dir() / "lfw" / "images" / "Colin_Powell").glob("*.jpg"))[:2]:
        shutil.copy(f, photos / f.name)
    r = CliRunner().invoke(main, ["cloak", str(photos), "--out", str(tmp_path / "out"), "--method", "advcloak-convex",
                                  "--source", "mobileface", "--gallery-size", "0"])
    out = refused(r, "advcloak-convex.safetensors is not a readable safetensors file", "bench train")
    assert out.strip().splitlines()[-1].startswith("Error: ") and "Traceback" not in out
