"""Prompts: deterministic bytes, exact normal count, the paper's taxonomy, scene and region shares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from brokenvideos.io.tables import read_table
from brokenvideos.prompts.step import make_prompts
from brokenvideos.prompts.taxonomy import REGION_BUCKETS, SCENE_WEIGHTS, SUBCATEGORIES, TAXONOMY, renderable
from brokenvideos.prompts.templates import ACTIONS, SETTINGS, SUBJECTS

RENDERABLE = renderable()

# BrokenVideos Section 3.3
PAPER_SCENE_SHARES = {"human": 0.53, "fauna_flora": 0.12, "robotic": 0.08, "urban": 0.08, "virtual": 0.07,
                      "natural_landscape": 0.07, "vehicle": 0.05}
PAPER_REGION_SHARES = {(1, 2): 0.80, (3, 6): 0.17, (7, 10): 0.03}


def _prompts_bytes(tiny_config, subdir, **overrides) -> bytes:
    path = tiny_config(subdir, **overrides)
    result = run_cli(["prompts", "--config", path], cwd=path.parent)
    assert result.code == 0, result.stderr
    return (path.parent / "results/prompts/prompts.parquet").read_bytes()


def test_same_config_and_seed_give_identical_bytes(tiny_config):
    a = _prompts_bytes(tiny_config, "a", prompts={"num_prompts": 40})
    b = _prompts_bytes(tiny_config, "b", prompts={"num_prompts": 40})
    assert a == b


def test_other_seed_gives_other_prompts(tiny_config):
    a = _prompts_bytes(tiny_config, "a", prompts={"num_prompts": 40})
    c = _prompts_bytes(tiny_config, "c", seed=1, prompts={"num_prompts": 40})
    assert a != c
    ta = read_table(tiny_config("a").parent / "results/prompts/prompts.parquet")
    tc = read_table(tiny_config("c").parent / "results/prompts/prompts.parquet")
    assert (ta.text != tc.text).sum() >= 20  # most prompts change, not one stray field
    assert set(ta.seed).isdisjoint(tc.seed)


def test_prompts_table_contract(tiny_config):
    path = tiny_config(prompts={"num_prompts": 12})
    assert run_cli(["prompts", "--config", path], cwd=path.parent).code == 0
    df = read_table(path.parent / "results/prompts/prompts.parquet", kind="prompts")
    assert list(df.columns[:8]) == ["prompt_id", "text", "category", "subcategory", "scene", "subject", "action",
                                    "seed"]
    assert list(df.prompt_id) == [f"p{i:05d}" for i in range(12)]
    assert df.prompt_id.is_unique and df.seed.is_unique


@pytest.mark.parametrize("n,fraction,expected", [(72, 0.25, 18), (1000, 0.3, 300), (10, 0.3, 3), (9, 0.0, 0),
                                                 (9, 1.0, 9), (3, 0.5, 2), (7, 0.5, 4)])
def test_exact_normal_count(n, fraction, expected):
    # (3, 0.5) and (7, 0.5): Python rounds half to even, 1.5 -> 2 and 3.5 -> 4
    df = make_prompts({"num_prompts": n, "normal_fraction": fraction}, run_seed=3)
    assert (df.label == "normal").sum() == expected
    assert (df.subcategory == "normal").sum() == expected
    assert (df.num_regions[df.label == "normal"] == 0).all()
    assert (df.num_regions[df.label == "broken"] >= 1).all()


def test_taxonomy_is_the_papers_table_1():
    assert len(TAXONOMY) == 5
    assert len(SUBCATEGORIES) == 11 and len(set(SUBCATEGORIES)) == 11
    assert {c: len(s) for c, s in TAXONOMY.items()} == {"technical": 2, "semantic": 3, "cognitive": 2,
                                                        "consistency": 2, "instructional": 2}
    assert set(RENDERABLE) <= set(SUBCATEGORIES)


def test_category_matches_subcategory_in_every_row():
    all_subs = {"num_prompts": 2000, "normal_fraction": 0.2, "subcategories": SUBCATEGORIES}
    df = make_prompts(all_subs, run_seed=0)
    for row in df.itertuples():
        if row.subcategory == "normal":
            assert row.category == "normal" and row.label == "normal"
        else:
            assert row.subcategory in TAXONOMY[row.category]
            assert row.label == "broken"
    # every subcategory of the taxonomy is sampled when all are allowed
    assert set(df.subcategory) == set(SUBCATEGORIES) | {"normal"}
    # default: only the renderable ones
    default = make_prompts({"num_prompts": 500, "normal_fraction": 0.0}, run_seed=0)
    assert set(default.subcategory) == set(RENDERABLE)


def test_text_agrees_with_spec():
    df = make_prompts({"num_prompts": 300, "normal_fraction": 0.3}, run_seed=5)
    for row in df.itertuples():
        assert row.subject in SUBJECTS[row.scene]
        assert row.action in ACTIONS[row.scene]
        assert row.setting in SETTINGS[row.scene]
        assert row.text.lower().startswith(f"{row.subject} {row.action} {row.setting}".lower())
        assert row.text.endswith(".")
    normal = df[df.label == "normal"]
    assert normal.text.str.contains("temporally consistent").all()
    assert not df[df.label == "broken"].text.str.contains("temporally consistent").any()


@pytest.fixture(scope="module")
def large_sample() -> pd.DataFrame:
    # 5,000 prompts in memory: standard error of the human share is ~0.7 %.
    return make_prompts({"num_prompts": 5000, "normal_fraction": 0.0}, run_seed=0)


def test_default_weights_are_the_papers():
    assert SCENE_WEIGHTS == PAPER_SCENE_SHARES
    assert {(b["min"], b["max"]): b["weight"] for b in REGION_BUCKETS} == PAPER_REGION_SHARES


def test_scene_shares_match_paper(large_sample):
    shares = large_sample.scene.value_counts(normalize=True).to_dict()
    assert set(shares) == set(PAPER_SCENE_SHARES)
    for scene, paper in PAPER_SCENE_SHARES.items():
        assert shares[scene] == pytest.approx(paper, abs=0.025), (scene, shares[scene])


def test_region_buckets_match_paper(large_sample):
    n = large_sample.num_regions
    assert n.min() >= 1 and n.max() <= 10
    for (lo, hi), paper in PAPER_REGION_SHARES.items():
        share = float(((n >= lo) & (n <= hi)).mean())
        assert share == pytest.approx(paper, abs=0.02), ((lo, hi), share)
    # within a bucket the count is uniform: both 1 and 2 regions occur about equally often
    assert abs((n == 1).mean() - (n == 2).mean()) < 0.05


def test_custom_scene_weights_are_used():
    df = make_prompts({"num_prompts": 400, "normal_fraction": 0.5,
                       "scene_weights": {"vehicle": 1.0, "urban": 0.0}}, run_seed=0)
    assert set(df.scene) == {"vehicle"}


def test_labels_do_not_depend_on_order_of_sampling():
    # The normal/broken assignment is a seeded permutation, so it differs between seeds but the count does not.
    a = make_prompts({"num_prompts": 200, "normal_fraction": 0.25}, run_seed=0)
    b = make_prompts({"num_prompts": 200, "normal_fraction": 0.25}, run_seed=1)
    assert (a.label == "normal").sum() == (b.label == "normal").sum() == 50
    assert not np.array_equal(a.label.to_numpy(), b.label.to_numpy())


def test_scene_weights_order_does_not_change_the_prompts():
    # A hand run reads the YAML's order, Snakemake passes JSON with sorted keys: same prompts.
    weights = dict(SCENE_WEIGHTS)
    shuffled = {k: weights[k] for k in sorted(weights, key=lambda k: weights[k])}
    assert list(shuffled) != sorted(shuffled)
    a = make_prompts({"num_prompts": 60, "normal_fraction": 0.25, "scene_weights": shuffled}, run_seed=0)
    b = make_prompts({"num_prompts": 60, "normal_fraction": 0.25,
                      "scene_weights": dict(sorted(shuffled.items()))}, run_seed=0)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_hand_run_equals_snakemake_on_the_default_config(tmp_path):
    import shutil

    from conftest import REPO, run_cli, run_snakemake

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = run_cli(["prompts", "--config", "config.yaml", "--out", "by-hand.parquet"], cwd=tmp_path)
    assert result.code == 0, result.stderr
    proc = run_snakemake(tmp_path, "-j1", "prompts")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "by-hand.parquet").read_bytes() == (tmp_path / "results/prompts/prompts.parquet").read_bytes()
