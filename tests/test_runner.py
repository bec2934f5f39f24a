"""End-to-end runs on a small slice of real LFW with a real recognizer: resume, reports, CLI errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.reporting import write_reports
from bench.reporting.tables import protection_table
from bench.runner import RunConfig, Runner
from bench.store import ResultStore
from interrupting_store import InterruptingStore
from mini_splits import write_mini_splits

TARGETS = ["mobileface", "dlib-resnet"]


@pytest.fixture(scope="module")
def mini_splits(tmp_path_factory, lfw):
    """Protocol splits over a slice of real LFW: 3 people x (10 inference + 5 test) + 60 distractors."""
    return write_mini_splits(tmp_path_factory.mktemp("splits"), lfw)


@pytest.fixture()
def env(mini_splits, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_SPLITS", str(mini_splits))
    return tmp_path


def config(**kw):
    base = dict(methods=["none", "noise", "fi-uap"], sources=["mobileface"], targets=TARGETS, split="commons",
                budgets=[1200.0], params={"fi-uap": {"steps": 2}})
    base.update(kw)
    return RunConfig(**base)


def test_interrupted_run_resumes_to_the_same_table(env):
    reference = Runner(config(), ResultStore(env / "reference"), progress=False).run()
    assert len(reference) == 3 * len(TARGETS)
    with pytest.raises(KeyboardInterrupt):
        Runner(config(), InterruptingStore(env / "resumed", after=3), progress=False).run()
    assert len(ResultStore(env / "resumed").rows()) == 3  # whole cells only, nothing half-written
    resumed = Runner(config(), ResultStore(env / "resumed"), progress=False).run()
    assert len(resumed) == len(reference)
    cols = ["top1_protection", "top5_protection", "top1_clean_accuracy", "ssim", "l2_realised", "tpr_at_far"]
    a = pd.DataFrame(reference).sort_values("cell").set_index("cell")[cols]
    b = pd.DataFrame(resumed).sort_values("cell").set_index("cell")[cols]
    pd.testing.assert_frame_equal(a, b)
    again = Runner(config(), InterruptingStore(env / "resumed", after=0), progress=False).run()
    assert len(again) == len(reference), "a finished run writes nothing more"


def test_baselines_behave_and_report_is_well_formed(env):
    rows = Runner(config(), ResultStore(env / "store"), progress=False).run()
    df = pd.DataFrame(rows)
    none = df[df.method == "none"]
    # no mask: protection is exactly 1 - clean accuracy, and nothing changed in the photo
    assert np.allclose(none.top1_protection, 1 - none.top1_clean_accuracy)
    assert (none.l2_realised == 0).all() and (none.ssim == 1).all()
    noise = df[df.method == "noise"]
    assert np.allclose(noise.l2_nominal, 1200.0) and ((noise.l2_realised - 1200).abs() < 100).all()
    assert (df.pairs == 3 * 5 * 4).all()
    table, white = protection_table(df, "commons")
    assert white.loc[("mobileface", "fi-uap"), ("mobileface", "Top-1")]
    assert not white.loc[("mobileface", "fi-uap"), ("dlib-resnet", "Top-1")]
    paths = write_reports(rows, env / "reports")
    names = {p.name for p in paths}
    assert {"table2_commons.csv", "table2_commons.tex", "results-long.csv"} <= names
    csv = pd.read_csv(env / "reports" / "table2_commons.csv", header=[0, 1], index_col=[0, 1])
    assert csv.shape == (1 + 3, 2 * (len(TARGETS) + 1))
    check_latex_tabular((env / "reports" / "table2_commons.tex").read_text(), columns=2 + 2 * (len(TARGETS) + 1))


def test_intervals_over_people_from_real_cells(env):
    from bench.uncertainty import bootstrap_rate, paired_difference

    rows = Runner(config(), ResultStore(env / "store"), progress=False).run()
    cells = {(r["method"], r["target"]): r for r in rows}
    fi = [cells[("fi-uap", t)] for t in TARGETS]
    noise = [cells[("noise", t)] for t in TARGETS]
    rate = bootstrap_rate(fi, k=1)
    assert rate.estimate == pytest.approx(100 * np.mean([c["top1_protection"] for c in fi]))  # equal pairs per person
    assert rate.low <= rate.estimate <= rate.high
    same = paired_difference(fi, fi)
    assert (same.estimate, same.low, same.high) == (0, 0, 0) and not same.resolved
    gap = paired_difference(fi, noise)
    assert gap.estimate == pytest.approx(rate.estimate - bootstrap_rate(noise).estimate)
    assert gap.low <= gap.estimate <= gap.high


def check_latex_tabular(tex: str, columns: int) -> None:
    """A LaTeX-free parse: balanced environments and braces, every row with the declared column count."""
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert tex.count("{") == tex.count("}")
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", tex).group(1)
    assert len(spec.replace("|", "")) == columns
    body = tex.split(spec + "}", 1)[1].split(r"\end{tabular}")[0]
    for row in [r for r in body.split(r"\\") if r.strip() and r.strip() != r"\hline"]:
        row = row.replace(r"\hline", "")
        width = sum(int(m) for m in re.findall(r"\\multicolumn\{(\d+)\}", row))
        width += row.count("&") + 1 - len(re.findall(r"\\multicolumn", row))
        assert width == columns, f"row has {width} columns, expected {columns}: {row!r}"


def test_cli_errors_list_the_valid_names(env):
    cli = CliRunner()
    r = cli.invoke(main, ["run", "--methods", "opom-nope", "--split", "commons"])
    assert r.exit_code != 0 and "unknown method 'opom-nope'" in r.output and "opom-convex" in r.output
    r = cli.invoke(main, ["run", "--methods", "none", "--target", "arcface-x", "--split", "commons"])
    assert "unknown recognizer 'arcface-x'" in r.output and "dlib-resnet" in r.output
    r = cli.invoke(main, ["run", "--methods", "none", "--split", "nosuch"])
    assert "unknown split 'nosuch'" in r.output and "celebrities" in r.output
    r = cli.invoke(main, ["methods", "--json"])
    assert r.exit_code == 0 and {m["name"] for m in json.loads(r.output)} >= {"none", "noise", "opom-convex"}


# -- the staged harness ------------------------------------------------------------------------------
REFERENCE_COLUMNS = ["top1_protection", "top5_protection", "top1_clean_accuracy", "ssim", "psnr", "l2_realised",
                     "tpr_at_far", "tpr_at_far_clean", "pairs", "per_identity_hits"]
# Measures of the mask itself: FI-UAP's gradient steps run through oneDNN's float32 kernels, which differ in the
# last bits between CPU generations (CI's runner gave SSIM 0.8435959 where this machine gives 0.8435878), so these
# are pinned to 1e-4 relative. Counts and rates stay exact: a refactor that moved one decision would show there.
MASK_MEASURES = {"ssim", "psnr", "l2_realised"}


def same_number(col: str, expected):
    if not isinstance(expected, float):
        return expected
    return pytest.approx(expected, rel=1e-4) if col in MASK_MEASURES else pytest.approx(expected, abs=1e-12)


def test_staged_runner_gives_the_rows_of_the_runner_before_the_stages(env):
    """tests/fixtures/runner_reference_rows.json: this config's rows from the single-class runner (commit
    9b3f93c, before bench/stages/), so the refactor changed no number."""
    reference = json.loads((Path(__file__).parent / "fixtures" / "runner_reference_rows.json").read_text())
    rows = Runner(config(), ResultStore(env / "store"), progress=False).run()
    got = {(r["method"], r["target"]): r for r in rows}
    assert len(got) == len(reference)
    for ref in reference:
        row = got[(ref["method"], ref["target"])]
        for col in REFERENCE_COLUMNS:
            assert row[col] == same_number(col, ref[col]), (ref["method"], ref["target"], col)


def small(**kw):
    return config(**{"methods": ["none", "noise"], "targets": ["mobileface"], **kw})


def test_damaged_cells_and_masks_are_set_aside_and_recomputed(env):
    from bench.store import DamagedResult

    store = ResultStore(env / "store")
    reference = {r["cell"]: r["top1_protection"] for r in Runner(small(), store, progress=False).run()}
    cells = sorted(store.cells.glob("*.json"))
    cells[0].write_text(cells[0].read_text()[:40])  # a copy cut short
    cells[1].write_text(json.dumps({"cell": "someone-else"}))  # valid JSON, not this cell
    masks = sorted(store.masks.glob("*.safetensors"))
    masks[0].write_bytes(masks[0].read_bytes()[:100])
    with pytest.warns(DamagedResult) as caught:
        rows = Runner(small(), store, progress=False).run()
    assert len(caught) >= 3 and any("unreadable mask set" in str(w.message) for w in caught)
    assert {r["cell"]: r["top1_protection"] for r in rows} == reference  # recomputed, same numbers
    kept = sorted(p.name for p in store.quarantine.iterdir())
    assert len(kept) >= 3 and any(cells[0].name in k for k in kept), "the damaged files are kept for inspection"
    assert len(ResultStore(env / "store").rows()) == len(reference)


def test_cells_follow_the_split_content_not_its_name(env, mini_splits, tmp_path, monkeypatch):
    import shutil

    store = ResultStore(env / "store")
    before = {r["cell"] for r in Runner(small(), store, progress=False).run()}
    changed = tmp_path / "changed-splits"
    shutil.copytree(mini_splits, changed)
    lines = (changed / "commons.csv").read_text().splitlines()
    drop = next(i for i, line in enumerate(lines) if ",test," in line)
    (changed / "commons.csv").write_text("\n".join(lines[:drop] + lines[drop + 1:]) + "\n")
    monkeypatch.setenv("BENCH_SPLITS", str(changed))
    after = Runner(small(), store, progress=False).run()
    assert before.isdisjoint({r["cell"] for r in after}), "a changed split must not reuse old cells"
    assert min(r["pairs"] for r in after) == 5 * 4 * 2 + 4 * 3


def test_a_registered_transform_and_protocol_get_their_own_cells_and_rows(env):
    from dataclasses import dataclass
    from typing import ClassVar

    from bench.stages.protocols import PROTOCOLS, ProbeIdentification, register_protocol

    @register_protocol
    @dataclass
    class TopOneOnly(ProbeIdentification):  # a protocol defined in the test: Top-1 only, its own version
        name: ClassVar[str] = "test-top1"
        version: ClassVar[str] = "test-top1-v1"

    try:
        cfg = small(transforms=["", "jpeg:75"], protocols=["identification", "test-top1"])
        rows = pd.DataFrame(Runner(cfg, ResultStore(env / "store"), progress=False).run())
    finally:
        PROTOCOLS.remove("test-top1")
    assert len(rows) == 2 * 2 * 2 and rows.cell.nunique() == 8
    assert set(rows.transforms) == {"", "jpeg:75"} and rows.protocol.str.startswith("test-top1-v1/").sum() == 4
    plain = rows[(rows.transforms == "") & rows.protocol.str.startswith("ident-v1")].set_index("method")
    jpeg = rows[(rows.transforms == "jpeg:75") & rows.protocol.str.startswith("ident-v1")].set_index("method")
    assert (jpeg.ssim == plain.ssim).all(), "quality is measured on the saved photo, before the transform"
    assert not np.allclose(jpeg.tpr_at_far, plain.tpr_at_far) or not np.allclose(jpeg.top5_protection, plain.top5_protection) \
        or (jpeg.per_identity_hits != plain.per_identity_hits).any()
    from bench.reporting.tables import robustness_table

    table, _ = protection_table(rows, "commons")
    assert len(table) == 1 + 2, "Tables 1-2 keep the paper's protocol on photos as saved"
    assert "probe-side, jpeg:75" in robustness_table(rows, "commons").columns


def test_people_from_a_folder_dataset_among_the_lfw_distractors(env, mini_splits, tmp_path, monkeypatch):
    import shutil

    splits = tmp_path / "splits"
    shutil.copytree(mini_splits, splits)
    monkeypatch.setenv("BENCH_SPLITS", str(splits))
    r = CliRunner().invoke(main, ["data", "split", "vgg3", "--from", "vggface2-train", "--identities",
                                  "n000002,n000003,n000004", "--inference", "3", "--test", "4"])
    assert r.exit_code == 0, r.output
    assert "3 identities, 21 photos" in r.output
    r = CliRunner().invoke(main, ["data", "split", "vgg3", "--from", "vggface2-train", "--identities", "n000002"])
    assert r.exit_code != 0 and "--overwrite" in r.output, "an existing split is never replaced silently"
    rows = Runner(small(split="vgg3", n_inference=[3]), ResultStore(env / "store"), progress=False).run()
    assert len(rows) == 2 and all(r["pairs"] == 3 * 4 * 3 and r["split"] == "vgg3" for r in rows)
    none = next(r for r in rows if r["method"] == "none")
    assert none["top1_clean_accuracy"] > 0.5, "mobileface identifies VGGFace2 people among LFW distractors"


def test_bad_transform_protocol_and_gallery_are_refused_with_the_valid_ones(env):
    cli = CliRunner()
    base = ["run", "--methods", "none", "--target", "mobileface", "--split", "commons"]
    r = cli.invoke(main, base + ["--transform", "swirl:3"])
    assert r.exit_code != 0 and "unknown transform 'swirl'" in r.output and "jpeg" in r.output and "blur" in r.output
    r = cli.invoke(main, base + ["--transform", "bits:8"])
    assert r.exit_code != 0 and "bit depth from 1 to 7" in r.output
    r = cli.invoke(main, base + ["--transform", "jpeg:0"])
    assert r.exit_code != 0 and "JPEG quality from 1 to 100" in r.output
    r = cli.invoke(main, base + ["--transform", "jpeg"])
    assert r.exit_code != 0 and "jpeg:VALUE" in r.output
    r = cli.invoke(main, base + ["--protocol", "nosuch"])
    assert r.exit_code != 0 and "unknown protocol 'nosuch'" in r.output and "identification" in r.output \
        and "gallery-side" in r.output and "linkability" in r.output
    r = cli.invoke(main, base + ["--gallery", "nosuch"])
    assert r.exit_code != 0 and "unknown split 'nosuch'" in r.output


def test_zoo_verify_clean_identification_is_the_runners_clean_accuracy(env):
    from bench.stages.protocols import clean_identification
    from bench.zoo import create_recognizer

    reference = json.loads((Path(__file__).parent / "fixtures" / "runner_reference_rows.json").read_text())
    expected = next(r for r in reference if r["method"] == "none" and r["target"] == "mobileface")
    ident = clean_identification("mobileface", create_recognizer("mobileface"), split="commons", progress=False)
    assert ident.accuracy(1) == pytest.approx(expected["top1_clean_accuracy"]) and ident.pairs == expected["pairs"]


def test_seeds_are_averaged_with_their_spread_and_table3_has_a_row_per_source(env):
    from bench.reporting.tables import efficiency_table, seed_spread

    rows = pd.DataFrame(Runner(small(seeds=[0, 1]), ResultStore(env / "store"), progress=False).run())
    spread = seed_spread(rows, "commons")
    noise = spread.loc[("-", "noise", "mobileface")]
    seeds = rows[(rows.method == "noise")].sort_values("seed")
    assert noise["seeds"] == 2 and noise["Top-1 mean (%)"] == pytest.approx(100 * seeds.top1_protection.mean())
    assert noise["min"] == pytest.approx(100 * seeds.top1_protection.min())
    table, _ = protection_table(rows, "commons")
    assert table.loc[("-", "noise"), ("mobileface", "Top-1")] == pytest.approx(noise["Top-1 mean (%)"])
    per_source = efficiency_table(rows, "commons", by_source=True)
    assert list(per_source.index.names) == ["source", "method"] and ("-", "noise") in per_source.index


def test_the_adaptive_attacker_runs_on_real_cells_and_leaves_unmasked_photos_alone(env):
    rows = pd.DataFrame(Runner(small(protocols=["identification", "adaptive-ridge"]), ResultStore(env / "store"),
                               progress=False).run())
    adaptive = rows[rows.protocol.str.startswith("adaptive-ridge-v1/")].set_index("method")
    static = rows[rows.protocol.str.startswith("ident-v1/")].set_index("method")
    assert set(adaptive.index) == {"none", "noise"} and adaptive.adaptive_top1_protection.between(0, 1).all()
    # photos with no mask: the map fitted on clean -> clean pairs is the identity, so nothing changes
    assert adaptive.loc["none", "adaptive_top1_protection"] == pytest.approx(static.loc["none", "top1_protection"])


def test_tables_1_2_hold_the_papers_cells_and_the_robustness_table_the_rest(env):
    from bench.reporting.tables import robustness_table

    cfg = small(transforms=["", "jpeg:50"], protocols=["identification", "adaptive-ridge"])
    rows = pd.DataFrame(Runner(cfg, ResultStore(env / "store"), progress=False).run())
    table, _ = protection_table(rows, "commons")
    assert len(table) == 1 + 2, "one row per method: the paper's protocol on photos as saved"
    robust = robustness_table(rows, "commons")
    assert list(robust.columns) == ["probe-side", "adaptive attacker", "adaptive attacker, jpeg:50", "probe-side, jpeg:50"]
    # mobileface is the only target and the baselines have no source: every cell is black-box
    assert robust.loc[("-", "noise"), "probe-side"] == pytest.approx(table.loc[("-", "noise"), ("mobileface", "Top-1")])
