"""VID-AID detectors against scikit-learn, the protocols' set algebra, and the step on a feature cache.

- nearest reference == KNeighborsClassifier(n_neighbors=1) on random features;
- the linear probe reaches LogisticRegression's accuracy on a linearly separable toy set;
- the second-order spread follows its definition, and its direction is read from the reference set;
- the step reads only the feature stores: no backbone is ever built, a re-run (or another protocol)
  gives the same files, and each backbone gets its rows in every table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from brokenvideos.detect import vidaid
from brokenvideos.detect.feature_store import write_store
from brokenvideos.io.tables import write_table
from conftest import run_cli, write_config


def test_nearest_reference_equals_scikit_learns_1nn():
    rng = np.random.default_rng(0)
    for dim in (2, 16, 300):
        ref, y = rng.normal(size=(80, dim)), rng.integers(0, 2, 80)
        test = rng.normal(size=(200, dim))
        ours = vidaid.NearestReference().fit(ref, y).predict(test)
        theirs = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(ref, y).predict(test)
        np.testing.assert_array_equal(ours, theirs)
    # the score orders like the decision: below 0.5 exactly when the nearest reference is real
    model = vidaid.NearestReference().fit(ref, y)
    np.testing.assert_array_equal(model.score(test) >= 0.5, model.predict(test) == 1)


def test_linear_probe_reaches_logistic_regressions_accuracy_on_separable_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20))
    w = rng.normal(size=20)
    y = (x @ w > 0).astype(int)
    x = x + 0.5 * np.sign(x @ w)[:, None] * w / np.linalg.norm(w)  # a margin: separable for sure
    train, test = slice(0, 300), slice(300, None)
    reference = LogisticRegression(max_iter=5000).fit(x[train], y[train]).score(x[test], y[test])
    probe = vidaid.LinearProbe(epochs=100, batch_size=32, lr=1e-2, seed=0).fit(x[train], y[train])
    ours = float(np.mean(probe.predict(x[test]) == y[test]))
    assert reference == 1.0 and ours >= reference
    again = vidaid.LinearProbe(epochs=100, batch_size=32, lr=1e-2, seed=0).fit(x[train], y[train])
    np.testing.assert_array_equal(probe.score(x[test]), again.score(x[test]))  # seeded


def test_second_order_spread_is_the_std_of_second_differences():
    f = np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [9.0, 0.0], [16.0, 2.0]])
    # f_{t+2} - 2 f_{t+1} + f_t: (2, 0), (2, 0), (2, 2) -> norms 2, 2, 2.828...
    norms = np.array([2.0, 2.0, np.sqrt(8.0)])
    assert vidaid.second_order_spread(f) == pytest.approx(norms.std())
    assert np.isnan(vidaid.second_order_spread(f[:2]))
    model = vidaid.SecondOrder().fit([5.0, 6.0, 1.0, 2.0], [0, 0, 1, 1])
    assert model.direction == "real: higher spread" and model.threshold == pytest.approx(3.5)
    np.testing.assert_array_equal(model.predict([7.0, 0.5, 3.6, 3.4]), [0, 1, 0, 1])
    assert vidaid.SecondOrder().fit([1.0, 2.0, 5.0, 6.0], [0, 0, 1, 1]).direction == "real: lower spread"


def test_protocols_leave_the_reference_generator_out_of_one_to_many_only():
    gens = ["a", "b", "c"]
    refs = vidaid.reference_sets(gens, "one_to_many")
    assert refs == [("a", ["a"]), ("b", ["b"]), ("c", ["c"])]
    assert vidaid.test_sets(gens, ["a"], "one_to_many") == ["b", "c"]
    (name, members), = vidaid.reference_sets(gens, "many_to_many")
    assert members == gens and vidaid.test_sets(gens, members, "many_to_many") == gens


TOY = {"backbone": "toy", "revision": "sha256:0", "feature": "frame", "input_size": None, "dim": 6}


@pytest.fixture()
def run_dir(tmp_path):
    """A split of 3 generators + real (12 prompts each) and a feature store where generator g's
    frames are shifted along axis g: separable, so every method has something to find."""
    rng = np.random.default_rng(2)
    rows, feats = [], {}
    gens = {"real-cam": None, "gen-a": 0, "gen-b": 1, "gen-c": 2}
    for gen, axis in gens.items():
        for p in range(12):
            vid = f"{gen}-p{p:02d}"
            rows.append({"video_id": vid, "split": "train" if p < 8 else "test", "generator": gen,
                         "is_generated": int(axis is not None), "prompt_id": f"p{p:02d}"})
            f = rng.normal(size=(8, 6)).astype(np.float32)
            if axis is not None:
                f[:, axis] += 4.0
            feats[vid] = f
    write_table(pd.DataFrame(rows), tmp_path / "splits.parquet", kind="splits")
    write_store(tmp_path / "features" / "toy", TOY, feats)
    # a clip backbone (one feature per video): the frames' mean, so it separates as well
    write_store(tmp_path / "features" / "clip", {**TOY, "backbone": "hf:org/toy-clip", "feature": "clip"},
                {v: f.mean(axis=0, keepdims=True) for v, f in feats.items()})
    # a 6-d toy needs a larger step than 1280-d features to converge in 300 epochs
    write_config(tmp_path, detect={"vidaid": {"probe": {"epochs": 300, "batch_size": 32, "lr": 0.01}}})
    return tmp_path


def _run(d, *stores, config="config.yaml"):
    return run_cli(["detect-vidaid", "--config", d / config, "--splits", d / "splits.parquet",
                    "--features", *[d / "features" / s for s in stores or ("toy",)], "--out-dir", d / "out"])


def _no_backbone(monkeypatch):
    import brokenvideos.models.backbones as backbones
    import brokenvideos.models.frozen_encoders as frozen

    def no_encoder(*a, **k):
        raise AssertionError("detect-vidaid must not run a backbone")

    for module, name in ((backbones, "FrozenImageEncoder"), (backbones, "load_encoder"),
                         (frozen, "frozen_encoder"), (frozen, "FrozenVideoEncoder")):
        monkeypatch.setattr(module, name, no_encoder)


def test_step_writes_the_papers_tables_from_the_store_alone(run_dir, monkeypatch):
    _no_backbone(monkeypatch)
    res = _run(run_dir)
    assert res.code == 0, res.stderr
    out = run_dir / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backbones"] == [{"backbone": "toy", "revision": "sha256:0", "feature": "frame"}]
    results = pd.DataFrame(metrics["results"])
    # one-to-many: 3 references x 2 other generators; many-to-many: 1 x 3; for each of 3 methods
    assert len(results) == 3 * (3 * 2 + 3)
    one = results[(results.protocol == "one_to_many")]
    assert not (one.reference == one.test).any()
    # separable toy features: the nearest reference and the probe are perfect where they were trained
    m2m = results[(results.protocol == "many_to_many") & results.method.isin(["nearest", "linear_probe"])]
    assert (m2m.f1_real == 1.0).all() and (m2m.f1_fake == 1.0).all()
    preds = pd.read_parquet(out / "predictions.parquet")
    assert len(preds) == int(results.num_videos.sum())
    table2 = pd.read_csv(out / "tables" / "vidaid_nearest_one_to_many.csv", dtype=str)
    assert list(table2.columns) == ["Reference", "Model", "Metric", "gen-a", "gen-b", "gen-c"]
    assert table2.loc[0, "gen-a"] == "-" and table2.Metric.tolist()[:2] == ["F1-Real", "F1-Fake"]
    assert "real:" in (out / "tables" / "vidaid_second_order_many_to_many.tex").read_text()
    assert (out / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    first = {p.name: p.read_bytes() for p in (out / "tables").glob("*")}
    assert _run(run_dir).code == 0  # a re-run: the same tables, byte for byte
    assert first == {p.name: p.read_bytes() for p in (out / "tables").glob("*")}


def test_a_protocol_rerun_runs_no_backbone(run_dir, monkeypatch):
    """Other protocols and methods on the same stores: features read, never encoded again."""
    _no_backbone(monkeypatch)
    assert _run(run_dir).code == 0
    write_config(run_dir, "m2m.yaml", detect={"vidaid": {"protocols": ["many_to_many"], "methods": ["nearest"],
                                                         "tsne": False}})
    res = _run(run_dir, config="m2m.yaml")
    assert res.code == 0, res.stderr
    results = pd.DataFrame(json.loads((run_dir / "out" / "metrics.json").read_text())["results"])
    assert set(results.protocol) == {"many_to_many"} and len(results) == 3


def test_every_backbone_gets_its_rows_and_a_clip_backbone_no_second_order(run_dir, monkeypatch):
    _no_backbone(monkeypatch)
    res = _run(run_dir, "toy", "clip")
    assert res.code == 0, res.stderr
    out = run_dir / "out"
    table = pd.read_csv(out / "tables" / "vidaid_nearest_many_to_many.csv", dtype=str)
    # VID-AID's layout: per reference set, each backbone's F1-Real and F1-Fake rows
    assert table[["Model", "Metric"]].values.tolist() == [["toy", "F1-Real"], ["toy", "F1-Fake"],
                                                          ["toy-clip", "F1-Real"], ["toy-clip", "F1-Fake"]]
    assert (table.loc[2:, ["gen-a", "gen-b", "gen-c"]] == "100.0").all().all()  # the mean separates too
    second = pd.read_csv(out / "tables" / "vidaid_second_order_many_to_many.csv", dtype=str)
    assert set(second.Model) == {"toy"}  # one feature per video has no time axis
    preds = pd.read_parquet(out / "predictions.parquet")
    assert set(preds.backbone) == {"toy", "toy-clip"}


def test_missing_store_is_one_line_naming_it(run_dir):
    (run_dir / "features" / "toy" / "index.json").unlink()
    res = _run(run_dir)
    assert res.code == 2 and "features/toy" in res.error and "detect-features" in res.error
