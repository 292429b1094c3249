"""The localization benchmark: predict → evaluate → Table 2, through Snakemake and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brokenvideos.generators import build_generator
from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.metrics.evaluate import score_video
from brokenvideos.models.baselines import temporal_residual_masks
from brokenvideos.models.postprocess import MIN_AREAS, THRESHOLDS, binarize, calibrate
from conftest import run_cli, run_snakemake, tiny_overrides, train_section, write_config

# A second localizer from a module outside the package (tests/fixtures/trivial_localizer.py, copied
# into the working directory): config alone gives it its Table 2 rows.
TRIVIAL = {"name": "frame_difference", "model": {"arch": "trivial_localizer:FrameDifference", "gain": 5.0},
           "overrides": {"epochs": 1, "batch_size": 2, "warmup_steps": 1}, "clip_len": 4, "crop": [32, 32]}
TINY_TRAIN = train_section(TRIVIAL, overrides=tiny_overrides(epochs=2))


@pytest.fixture(scope="module")
def localized(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("localize")
    shutil.copy2(Path(__file__).parent / "fixtures" / "trivial_localizer.py", workdir)
    write_config(workdir, train=TINY_TRAIN, dataset={"split": {"by": "ratios", "train": 0.6, "val": 0.4}},
                 evaluate={"baselines": ["temporal_residual", "empty"]})
    done = run_snakemake(workdir, "-j2", "tables", timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_table2_in_the_papers_layout(localized, monkeypatch):
    tables = localized / "results" / "tables"
    t2 = pd.read_csv(tables / "table2.csv")
    assert t2[["Method", "Finetuned"]].values.tolist() == [["st_unet", "✗"], ["st_unet", "✓"],
                                                            ["frame_difference", "✗"], ["frame_difference", "✓"],
                                                            ["temporal_residual", "✗"], ["empty", "✗"]]
    groups = ("Broken Videos", "Normal Videos", "All Videos")
    assert list(t2.columns[2:]) == [f"{g} {m}" for g in groups for m in ("J", "F", "J&F")]
    values = t2.iloc[:, 2:].to_numpy(float)
    assert ((values >= 0) & (values <= 1)).all()
    for g in groups:  # J&F is the mean of J and F
        assert np.allclose(t2[f"{g} J&F"], (t2[f"{g} J"] + t2[f"{g} F"]) / 2, atol=1e-4)
    md = (tables / "table2.md").read_text()
    assert md.count("\n") == 8 and "| st_unet | ✓ |" in md and "| frame_difference | ✓ |" in md
    metrics = json.loads((tables / "table2.json").read_text())  # `dvc metrics show` reads this
    assert set(metrics) == {"st_unet", "frame_difference", "temporal_residual", "empty"}
    assert metrics["frame_difference"]["finetuned"]["all"]["J&F"] == pytest.approx(t2["All Videos J&F"][3], abs=1e-4)
    # the outside localizer was trained (its two parameters moved) and reloads from its directory
    from brokenvideos.models import load_pretrained

    monkeypatch.syspath_prepend(str(localized))  # where the rules found the module: their working dir
    before, after = (load_pretrained(localized / f"results/train/frame_difference/{c}") for c in ("initial", "final"))
    assert type(after).__name__ == "FrameDifference" and before.scale.item() == 5.0
    assert after.scale.item() != before.scale.item()
    for name in ("st_unet", "frame_difference"):  # the rules' training logs read as plain text
        log = (localized / f"results/train/{name}/train.log").read_text()
        assert "\x1b[" not in log and "Failed to query Ray Train Controller" not in log
    assert "\\checkmark" in (tables / "table2.tex").read_text()
    for name in ("jf_by_category.md", "jf_by_generator.md", "figures/training_curves.png", "figures/overlays.png"):
        assert (tables / name).stat().st_size > 0, name
    # every evaluated video has a row, with its label and generator
    per_video = read_table(localized / "results/metrics/st_unet/final/per_video.parquet")
    splits = read_table(localized / "results/dataset/splits.parquet")
    videos = read_table(localized / "results/dataset/videos.parquet")
    val = videos.merge(splits, on="video_id").query("split == 'val' and label != 'real'")
    assert sorted(per_video.video) == sorted(val.video_id)
    # the "empty" floor: perfect on normal videos; on a broken video, the share of its frames whose
    # ground truth is empty (mevis counts every frame)
    empty = t2.set_index("Method").loc["empty"]
    assert empty["Normal Videos J&F"] == 1.0
    shares = [np.mean([not m.any() for m in read_video_masks(localized / r.mask_dir, r.num_frames, (r.height, r.width))])
              for r in val.query("label == 'broken'").itertuples()]
    assert empty["Broken Videos J&F"] == pytest.approx(np.mean(shares), abs=1e-4)
    # every row got its operating point the same way, on the train split (empty has nothing to choose)
    for d in ("train/st_unet/initial", "train/st_unet/final", "predictions/temporal_residual/none",
              "predictions/empty/none"):
        post = json.loads((localized / "results" / d / "postprocess.json").read_text())
        assert set(post) >= {"threshold", "min_area", "train_jf", "train_jf_by_label"}, d
    # the frame-level table: predicting nothing scores 0 on artifact frames and never fires
    frames = pd.read_csv(tables / "frames.csv").set_index("Method")
    assert list(frames.index) == ["st_unet", "st_unet", "frame_difference", "frame_difference", "temporal_residual",
                                  "empty"]
    nothing = frames.loc["empty"]
    assert (nothing["Artifact-frame J&F"], nothing["Frame recall"], nothing["False-positive rate (artifact-free frames)"]) \
        == (0.0, 0.0, 0.0)
    by_cat = pd.read_csv(tables / "frames_by_category.csv")
    assert by_cat.scenes.sum() == val.query("label == 'broken'").prompt_id.nunique()
    # a second run does nothing
    again = run_snakemake(localized, "-j2", "tables")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_run_records_each_jobs_time_and_phase_times_sums_it(localized):
    """The `benchmark:` directives write where ResultPaths says, and phase-times reads that run."""
    from brokenvideos.paths import ResultPaths

    P = ResultPaths(localized / "results")
    for name in ("st_unet", "frame_difference"):
        assert float(pd.read_csv(P.benchmark("train_localizer", name), sep="\t")["s"].iloc[0]) > 0
    assert P.benchmark("predict_localizer", "st_unet", "final").is_file() and P.benchmark("tables").is_file()
    result = run_cli(["phase-times", "--config", "config.yaml"], cwd=localized)
    assert result.code == 0, result.stderr
    assert "| data |" in result.stdout and "| localize | train_localizer | 2 |" in result.stdout


def test_normal_target_empty_vs_full():
    gt = np.zeros((3, 8, 8), np.uint8)
    nothing = np.zeros_like(gt)
    stray = nothing.copy()
    stray[1, 0, 0] = 1
    # empty: predicting nothing is perfect; a stray pixel zeroes its frame (J = F = 0 there)
    assert score_video(gt, nothing, "normal", "mevis", "empty")[0]["JF"] == 1.0
    assert score_video(gt, stray, "normal", "mevis", "empty")[0]["J"] == pytest.approx(2 / 3)
    # full: the normal region (complement of the artifact mask) is scored against the full frame
    full = score_video(gt, stray, "normal", "mevis", "full")[0]
    assert full["J"] == pytest.approx((1 + 63 / 64 + 1) / 3)
    assert score_video(gt, np.ones_like(gt), "normal", "mevis", "full")[0]["J"] == 0.0
    # broken videos are scored the same way under both
    gt_b = gt.copy()
    gt_b[:, 2:5, 2:5] = 1
    assert score_video(gt_b, gt_b, "broken", "mevis", "full") == score_video(gt_b, gt_b, "broken", "mevis", "empty")


def test_bad_predictions_name_video_and_frame(localized, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(localized / "results/predictions/st_unet/final", pred)
    victim = sorted(p for p in pred.iterdir() if p.is_dir())[0]
    (victim / "00003.png").unlink()
    result = run_cli(["evaluate", "--config", "config.yaml", "--pred-dir", pred, "--split", "val",
                      "--out-dir", tmp_path / "m"], cwd=localized)
    assert result.code == 2 and victim.name in result.error and "mask frames" in result.error
    shutil.rmtree(victim)
    result = run_cli(["evaluate", "--config", "config.yaml", "--pred-dir", pred, "--split", "val",
                      "--out-dir", tmp_path / "m"], cwd=localized)
    assert result.code == 2 and victim.name in result.error and "missing" in result.error
    assert not (tmp_path / "m").exists()


def test_binarize_drops_small_components():
    prob = np.zeros((1, 10, 10), np.float32)
    prob[0, 1, 1] = 0.99           # a 1-pixel speck
    prob[0, 4:8, 4:8] = 0.99       # a 16-pixel blob
    assert binarize(prob, 0.5, 0).sum() == 17
    assert binarize(prob, 0.5, 8).sum() == 16
    assert binarize(prob, 0.995, 0).sum() == 0


def test_operating_point_keeps_confident_regions_and_drops_noise():
    """Normal clips carry specks up to 0.9 and a 40-pixel blob at 0.97; the broken clip's artifact is
    at 0.995 with a fringe at 0.6. The balanced choice is a threshold above 0.97 (or an area filter
    that drops the blob) that keeps the artifact whole."""
    rng = np.random.default_rng(0)
    target = np.zeros((4, 24, 24), np.uint8)
    target[:2, 6:16, 6:16] = 1
    broken = np.where(target > 0, 0.995, 0.0).astype(np.float32)
    broken[:2, 5, 6:16] = 0.6
    normal = (rng.random((4, 24, 24)) * 0.9).astype(np.float32)
    normal[1, 2:7, 14:22] = 0.97
    post = calibrate([("broken", target, broken), ("normal", np.zeros_like(target), normal)])
    assert post["train_jf_by_label"] == {"broken": 1.0, "normal": 1.0}
    assert post["threshold"] in THRESHOLDS and post["min_area"] in MIN_AREAS
    assert binarize(broken, post["threshold"], post["min_area"]).sum() == 200


def test_temporal_residual_finds_flicker_far_above_chance():
    """Pooled over scenes: few false alarms on clean video (pan and walkers are flow-compensated),
    and what it flags on videos with frame-to-frame artifacts is mostly artifact."""
    video = {"width": 96, "height": 64, "num_frames": 8, "fps": 8}
    gen = build_generator({"name": "g", "backend": "synthetic", "family": "upsampler"}, video, 0)
    clean_rates, hits, flagged, gt_pixels, total = [], 0, 0, 0, 0
    for seed in range(4):
        for sub in ("perceptual_overload", "symbol_confusion"):
            spec = {"prompt_id": "p0", "scene": "fauna_flora", "seed": seed, "label": "broken",
                    "subcategory": sub, "num_regions": 2}
            clean, _, _ = gen.render(spec, seed=1, with_artifacts=False)
            clean_rates.append(temporal_residual_masks(clean).mean())
            frames, masks, _ = gen.render(spec, seed=1)
            pred, gt = temporal_residual_masks(frames) > 0, masks > 0
            hits, flagged, gt_pixels, total = hits + (pred & gt).sum(), flagged + pred.sum(), gt_pixels + gt.sum(), \
                total + gt.size
    precision, chance = hits / flagged, gt_pixels / total
    assert np.mean(clean_rates) < 0.03
    assert precision > 0.35 and precision > 5 * chance, (precision, chance)


def test_frame_scores_count_firing_per_frame_and_jf_on_artifact_frames_only():
    from brokenvideos.metrics.evaluate import frame_scores

    gt = np.zeros((4, 16, 16), np.uint8)
    gt[1:3, 4:8, 4:8] = 1          # artifact on frames 1 and 2
    gt[3, 0:2, 0:2] = 255          # void only on frame 3: not an artifact frame
    pred = np.zeros_like(gt)
    pred[1, 4:8, 4:8] = 1          # frame 1 exact
    pred[3, 0:2, 0:2] = 1          # inside the void: not a firing
    pred[0, 10:12, 10:12] = 1      # a false alarm on frame 0
    got = frame_scores(gt, pred)
    assert (got["frames_tp"], got["frames_fp"], got["frames_fn"], got["frames_tn"]) == (1, 1, 1, 1)
    assert got["artifact_frames"] == 2 and got["JF_artifact"] == pytest.approx(0.5)  # 1 on frame 1, 0 on frame 2
    assert np.isnan(frame_scores(np.zeros_like(gt), pred)["JF_artifact"])
