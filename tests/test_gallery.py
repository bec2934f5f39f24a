"""Large-gallery search on real faces: approximate indexes (``--index ivf|hnsw``) measured against
exact search, a distractor gallery combining datasets, and approximate cells kept apart from exact ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench import search
from bench.cli import main
from bench.data.gallery_split import combine_gallery
from bench.data.splits import Row, Split, load_split, write_split_csv
from bench.features import FaceSource, clean_features
from bench.gallery_cost import recall, split_queries
from bench.runner import RunConfig, Runner
from bench.search import INDEX_KINDS, make_index
from bench.store import ResultStore
from bench.zoo import create_recognizer
from mini_splits import write_mini_splits

GLINT_PEOPLE = ["Barack_Obama", "Hugh_Jackman", "Hugh_Laurie", "James_Spader", "Mark_Ruffalo", "Miley_Cyrus"]


@pytest.fixture(scope="module")
def glint_features():
    """MobileFace features of 600 real Glint faces (pre-aligned: no detection), 100 per person."""
    from bench.data import open_dataset

    files = sorted(r.relpath for r in open_dataset("glint-celeb24").scan().records if r.identity in GLINT_PEOPLE)
    files = [f for p in GLINT_PEOPLE for f in [g for g in files if g.startswith(p + "/")][:100]]
    source = FaceSource("glint-celeb24", files, progress=False)
    return clean_features(create_recognizer("mobileface"), source, files, progress=False)


def test_approximate_indexes_against_exact_search_on_real_faces(glint_features, monkeypatch):
    gallery, queries = split_queries(glint_features, 100)
    for kind in ("ivf", "hnsw"):
        r = recall(gallery, queries, kind)
        assert r["recall@1"] >= 0.97 and r["recall@5"] >= 0.95, r  # pinned on this real slice
    # what an approximate index returns is re-scored exactly: its scores are the float64 inner products
    scores, idx = make_index("faiss", gallery, "hnsw").topk(queries, 5)
    np.testing.assert_allclose(scores, np.einsum("nkd,nd->nk", gallery[idx].astype(np.float64), queries.astype(np.float64)),
                               rtol=0, atol=1e-12)
    # one list of the 12 visited: the measure sees what an approximate index misses
    monkeypatch.setattr(search, "IVF_NPROBE", 1)
    starved = recall(gallery, queries, "ivf")
    assert starved["recall@5"] < 0.9, starved


def test_unknown_or_mismatched_index_is_one_clear_error(tmp_path):
    r = CliRunner().invoke(main, ["run", "--methods", "none", "--target", "mobileface", "--index", "lsh"])
    assert r.exit_code != 0 and "'flat', 'ivf', 'hnsw'" in r.output
    with pytest.raises(Exception, match="FAISS index; use --backend faiss"):
        make_index("torch", np.eye(4, dtype=np.float32), "ivf")
    with pytest.raises(Exception, match="unknown index 'lsh'; choose one of: flat, ivf, hnsw"):
        make_index("faiss", np.eye(4, dtype=np.float32), "lsh")


def test_gallery_of_two_datasets_and_approximate_cells_apart_from_exact(tmp_path, monkeypatch, lfw):
    folder = write_mini_splits(tmp_path / "splits", lfw)
    monkeypatch.setenv("BENCH_SPLITS", str(folder))

    glint = [Row("glint-celeb24", p, "gallery", f) for p in ("Hugh_Jackman", "Mark_Ruffalo") for f in _first_files(p, 10)]
    # a protected person's photo (labelled by name) among them: it must be dropped
    glint.append(Row("glint-celeb24", "Hugo_Chavez", "gallery", _first_files("Tom_Hanks", 1)[0]))
    write_split_csv(Split("glint-few", glint), folder / "glint-few.csv")
    mixed, report = combine_gallery("mixed", ["distractors", "glint-few"], ["commons"], folder)
    n_lfw = len(load_split("distractors", folder).rows)
    assert report["datasets"] == {"lfw": n_lfw, "glint-celeb24": 20}
    assert report["dropped"] == {"glint-few: a protected person": 1}, "a protected person is never a distractor"
    write_split_csv(mixed, folder / "mixed.csv")

    base = dict(methods=["none", "noise"], sources=["mobileface"], targets=["mobileface"], split="commons", gallery_split="mixed")
    store = ResultStore(tmp_path / "store")
    flat_runner = Runner(RunConfig(**base), store, progress=False)
    flat = flat_runner.run()
    clean = flat_runner.evaluator("mobileface").clean
    assert clean.distractors.shape == (n_lfw + 20, 256)
    model = flat_runner.model("mobileface")
    glint_files = [r.file for r in mixed.rows if r.dataset == "glint-celeb24"]
    np.testing.assert_array_equal(clean.distractors[n_lfw:], clean_features(model, FaceSource("glint-celeb24", glint_files, False),
                                                                         glint_files, progress=False))
    ivf = Runner(RunConfig(**base, index="ivf"), store, progress=False).run()
    assert {r["cell"] for r in flat}.isdisjoint({r["cell"] for r in ivf}), "approximate cells never reuse exact ones"
    assert all("/index:" not in r["protocol"] for r in flat), "flat keeps the cell ids of runs before --index"
    assert all(r["protocol"].endswith("/index:" + INDEX_KINDS["ivf"]) for r in ivf)
    # ~60 distractors make 1 list, visited: here ivf must find exactly what flat finds
    by = lambda rows: {r["method"]: (r["top1_protection"], r["top5_protection"]) for r in rows}  # noqa: E731
    assert by(flat) == by(ivf)
    # the gallery-size figure's data: exact cells only, one point per method at this gallery's size
    from bench.gallery_size import curve

    c = curve(pd.DataFrame(store.rows()), {"mixed": len(mixed.rows)}, "commons")
    assert set(c["method"]) == {"none", "noise"} and (c["distractors"] == len(mixed.rows)).all() and (c["cells"] == 1).all()
    assert dict(zip(c["method"], c["top1_protection"])) == {m: v[0] for m, v in by(flat).items()}


def _first_files(person: str, n: int) -> list[str]:
    from bench.paths import data_dir

    return sorted(f"{person}/{p.name}" for p in (data_dir() / "glint-celeb24-112" / person).glob("*.jpg"))[:n]


def test_gallery_size_curve_and_figure_on_fixture_rows(tmp_path):
    """Fixture rows (hand-built cells, not a run): the curve keeps only the cells measured against every
    gallery (a method at one size only, and the inference-photo sweep's other counts, would bend a line),
    keeps the baselines (made from no photo: n_inference 0), and the figure is written."""
    from bench.gallery_size import curve, plot

    def cell(method, source, target, gallery, rate, n_inference=10):
        return {"split": "celebrities", "budget": 1200.0, "protocol": f"ident-v1/{gallery}/k1,5/far0.001",
                "transforms": "", "n_inference": n_inference, "method": method, "source": source,
                "target": target, "white_box": source == target, "top1_protection": rate}

    rows = [cell("opom-convex", "mobileface", t, g, r) for g, r in (("g1k", 0.4), ("g3k", 0.5))
            for t in ("mobileface", "dlib-resnet")]
    rows += [cell("none", "-", "dlib-resnet", g, r, n_inference=0) for g, r in (("g1k", 0.1), ("g3k", 0.2))]
    rows += [cell("gap", "mobileface", "dlib-resnet", "g3k", 0.9),  # one gallery only
             cell("opom-convex", "mobileface", "dlib-resnet", "g3k", 0.0, n_inference=3)]  # the sweep
    c = curve(pd.DataFrame(rows), {"g1k": 1000, "g3k": 3000}, "celebrities")
    got = {(b, m, d): (round(p, 6), n) for b, m, d, p, n in c.itertuples(index=False)}
    assert got == {("black-box", "none", 1000): (0.1, 1), ("black-box", "none", 3000): (0.2, 1),
                   ("black-box", "opom-convex", 1000): (0.4, 1), ("black-box", "opom-convex", 3000): (0.5, 1),
                   ("white-box", "opom-convex", 1000): (0.4, 1), ("white-box", "opom-convex", 3000): (0.5, 1)}
    figure = plot(c, tmp_path, "test")
    assert all(p.stat().st_size > 1000 for p in figure.files)
