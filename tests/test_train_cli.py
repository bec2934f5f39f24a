"""`bench train --config FILE` and `bench train select` on a small real slice of the training split, the
stage registry, and the committed experiment files (configs/train/) against the shipped checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data import open_dataset, prepare
from bench.data.splits import load_split
from bench.paths import repo_root
from bench.training import make_config
from bench.training.experiment import load_experiment
from bench.training.stages import STAGES
from bench.training.trainer import run_id, spec_of
from methods import METHODS
from methods.checkpoints import SHIPPED
from methods.generative import GeneratorMethod

SOURCE = "mobileface"  # the fastest white-box model
CONFIGS = sorted((repo_root() / "configs" / "train").glob("*.toml"))
TINY = {"width": 4, "d_width": 4, "batch_size": 4, "stage2_photos": 6, "snapshots": False}


def test_every_trainable_method_has_a_registered_stage():
    trainable = [n for n in METHODS.names() if issubclass(METHODS.entry(n).factory, GeneratorMethod)]
    assert trainable
    cfg = make_config("cpu", stage1_steps=11, stage2_steps=12, gap_steps=13, batch_size=5, stage2_photos=7, gap_batch_size=9)
    for name in trainable:
        stage = STAGES.create(spec_of(name).stage, cfg=cfg)
        # each stage reads its own settings: its steps and batch, not another stage's
        assert (stage.steps, stage.images_per_step) == {"stage1": (11, 5), "stage2": (12, 2 * 7), "gap": (13, 9)}[stage.name]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_committed_experiment_files_are_the_shipped_runs(path):
    """Each committed experiment names exactly the configuration its shipped checkpoints were trained with:
    the run id (a hash of the method, source and every defining option) equals the one on the card."""
    exp = load_experiment(path)
    cfg = make_config(exp.profile, **exp.options)
    for method in exp.methods:
        spec = spec_of(method)
        card = json.loads((SHIPPED / exp.source / f"{spec.checkpoint}.json").read_text())
        assert run_id(spec, exp.source, cfg) == card["run"], f"{path.name}: {method} differs from the shipped run"


@pytest.mark.parametrize("path", sorted((repo_root() / "configs" / "train").rglob("*.toml")),
                         ids=lambda p: p.relative_to(repo_root() / "configs" / "train").as_posix())
def test_every_committed_experiment_file_is_a_valid_training_config(path):
    """Ablations included (configs/train/ablation-*/, read by tools/stage1_sweep.py and stage2_ablation.py)."""
    exp = load_experiment(path)
    make_config(exp.profile, **exp.options)
    for method in exp.methods:
        spec_of(method)


@pytest.fixture(scope="module")
def small_train_split(tmp_path_factory):
    """A real slice: 6 VGGFace2 training identities x 20 photos (4 held back for validation, 2 to train on)."""
    split = load_split("train")
    rows = [(i, f) for i in split.identities()[:6] for f in split.files(i, "train")[:20]]
    folder = tmp_path_factory.mktemp("splits")
    (folder / "train.csv").write_text("dataset,identity,role,file\n" + "".join(f"vggface2-train,{i},train,{f}\n" for i, f in rows))
    prepare(open_dataset("vggface2-train"), only=sorted(f for _, f in rows), progress=False)
    return folder


@pytest.fixture(scope="module")
def trained(small_train_split, tmp_path_factory):
    """`bench train --config FILE --steps 1`: stage I then stage II, into a temporary generator folder."""
    root = tmp_path_factory.mktemp("train")
    config = root / "tiny.toml"
    options = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
    config.write_text(f'methods = ["advfaces", "advcloak"]\nsource = "{SOURCE}"\nsteps = 3\n\n[options]\n{options}\n')
    env = {"BENCH_SPLITS": str(small_train_split), "BENCH_GENERATORS": str(root / "generators"),
           "BENCH_RESULTS": str(root / "results")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        r = CliRunner().invoke(main, ["train", "--config", str(config), "--steps", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    return root, env, r.output


def test_train_config_trains_the_files_methods_and_a_flag_wins_over_the_file(trained):
    root, _, output = trained
    cfg = make_config("cpu", **TINY)
    for method in ("advfaces", "advcloak"):
        spec = spec_of(method)
        card = json.loads((root / "generators" / SOURCE / f"{spec.checkpoint}.json").read_text())
        assert card["steps"] == 1, "--steps 1 on the command line wins over the file's steps = 3"
        assert card["config"] == dataclasses.asdict(cfg) and card["run"] == run_id(spec, SOURCE, cfg)
        assert f"{method}: wrote" in output
    assert json.loads((root / "generators" / SOURCE / "advcloak.json").read_text())["started_from"]["checkpoint"] == f"{SOURCE}/stage1"


def test_train_select_names_the_shipped_generator_over_a_one_step_one(trained):
    """The shipped advcloak (300 steps, width 8) against the 1-step width-4 one just trained, on the slice's
    held-back people: the shipped one protects more and is named best."""
    root, env, _ = trained
    candidates = [SHIPPED, root / "generators"]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        r = CliRunner().invoke(main, ["train", "select", "advcloak", "--source", SOURCE, "--draws", "1",
                                      "--distractors", "2", *map(str, candidates)])
    assert r.exit_code == 0, r.output
    lines = {str(c): next(line for line in r.output.splitlines() if line.startswith(str(c))) for c in candidates}
    top1 = {c: float(line.split("top1 ")[1].split("%")[0]) for c, line in lines.items()}
    print(r.output)
    assert top1[str(SHIPPED)] > top1[str(root / "generators")] + 20
    assert r.output.strip().splitlines()[-1] == f"best: {SHIPPED}"


@pytest.mark.parametrize("text, error", [
    ('methods = ["advfaces"]\nsource = "mobileface"\nstep = 3\n', "unknown key(s) step; keys: methods, source"),
    ('methods = "advfaces"\nsource = "mobileface"\n', "methods must be a non-empty list of method names"),
    ('methods = ["advfaces"]\n', "needs source"),
    ('methods = ["advfaces"]\nsource = "mobileface"\n[options]\nwidht = 4\n', "unknown training option(s) widht; options:"),
    ('methods = ["advfaces"\n', "cannot be read as TOML"),
])
def test_a_bad_config_file_is_one_clear_error_before_any_work(tmp_path, monkeypatch, text, error):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    config = tmp_path / "bad.toml"
    config.write_text(text)
    r = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert r.exit_code != 0 and error in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "results").exists()


def test_train_without_methods_or_source_says_what_is_missing():
    r = CliRunner().invoke(main, ["train", "advfaces"])
    assert r.exit_code != 0 and "give METHODS and --source, or a --config file" in r.output


def test_select_refuses_a_folder_without_the_methods_checkpoint(tmp_path):
    r = CliRunner().invoke(main, ["train", "select", "advcloak", "--source", SOURCE, str(tmp_path)])
    assert r.exit_code != 0 and f"{tmp_path} holds no advcloak checkpoint for {SOURCE}" in r.output
