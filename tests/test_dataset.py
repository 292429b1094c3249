"""dataset: splits grouped by prompt and stratified, the paper preset, statistics, and bad input that
fails with one line naming the file while the previous good outputs stay byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli, run_pipeline, shards_of, write_config
from PIL import Image

from brokenvideos.dataset.splits import PAPER_COUNTS, make_splits, paper_counts, split_by_ratios
from brokenvideos.dataset.stats import dataset_stats
from brokenvideos.io.masks import encode_mask
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.prompts.taxonomy import region_bucket


# ---- splits on synthetic manifests -------------------------------------------------------------------

def fake_videos(num_prompts: int, normal_fraction: float, generators=("g1", "g2", "cam"), seed: int = 0,
                broken_only: tuple = ()) -> pd.DataFrame:
    """A videos table shaped like the pipeline's: every prompt rendered by every generator, camera → real;
    generators in ``broken_only`` render broken prompts only."""
    rng = np.random.default_rng(seed)
    normal = rng.permutation(num_prompts) < round(num_prompts * normal_fraction)
    rows = []
    for i in range(num_prompts):
        for g in generators:
            if g in broken_only and normal[i]:
                continue
            label = "real" if g == "cam" else ("normal" if normal[i] else "broken")
            rows.append({"video_id": f"{g}-p{i:05d}", "prompt_id": f"p{i:05d}", "generator": g, "label": label})
    return pd.DataFrame(rows)


def _check_grouped(videos: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    merged = videos.merge(splits, on="video_id", how="inner")
    per_prompt = merged.groupby("prompt_id").split.nunique()
    assert (per_prompt == 1).all(), f"prompts in two splits: {list(per_prompt[per_prompt > 1].index[:5])}"
    assert splits.video_id.is_unique
    assert set(splits.split) <= {"train", "val", "test"}
    return merged


def test_ratio_splits_grouped_stratified_and_sized():
    videos = fake_videos(600, 0.25, broken_only=("g2",))
    ratios = {"train": 0.7, "val": 0.15, "test": 0.15}
    splits = split_by_ratios(videos, ratios, seed=0)
    merged = _check_grouped(videos, splits)
    assert len(splits) == len(videos)  # ratios use every video
    prompts_per_split = merged.groupby("split").prompt_id.nunique()
    for split, ratio in ratios.items():
        assert prompts_per_split[split] == pytest.approx(600 * ratio, abs=2)  # ≤ 1 group per stratum off
    overall_broken = (videos.label == "broken").sum() / videos.label.isin(["broken", "normal"]).sum()
    for split, part in merged.groupby("split"):
        gen = part[part.label != "real"]
        assert (gen.label == "broken").mean() == pytest.approx(overall_broken, abs=0.02), split
        # stratified by generator too: each generator's share of the split is its overall share
        for g in ("g1", "g2", "cam"):
            assert (part.generator == g).mean() == pytest.approx((videos.generator == g).mean(), abs=0.02)


def test_ratio_splits_depend_on_seed_only():
    videos = fake_videos(200, 0.3)
    a = split_by_ratios(videos, {"train": 0.8, "val": 0.2}, seed=0)
    b = split_by_ratios(videos.sample(frac=1, random_state=1), {"train": 0.8, "val": 0.2}, seed=0)
    c = split_by_ratios(videos, {"train": 0.8, "val": 0.2}, seed=1)
    pd.testing.assert_frame_equal(a, b)  # row order of the input does not matter
    assert not a.split.equals(c.split)
    assert set(a.split) == {"train", "val"}  # test ratio 0: no test split


def test_ratio_split_of_tiny_strata_keeps_groups_whole():
    videos = fake_videos(7, 0.3)
    splits = make_splits(videos, {"by": "ratios", "train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    _check_grouped(videos, splits)
    assert len(splits) == len(videos)


def test_paper_counts_are_the_papers_at_full_scale():
    assert PAPER_COUNTS == {"train": {"broken": 3091, "normal": 748}, "val": {"broken": 150, "normal": 150}}
    # exactly the paper's number of broken + normal videos (4,139) → exactly the paper's counts
    videos = fake_videos(3241 + 898, 898 / 4139, generators=("g1",))
    assert (videos.label == "broken").sum() == 3241
    assert paper_counts(videos) == PAPER_COUNTS
    splits = make_splits(videos, {"by": "paper"}, seed=0)
    got = videos.merge(splits, on="video_id").groupby(["split", "label"]).size().to_dict()
    assert got == {("train", "broken"): 3091, ("train", "normal"): 748, ("val", "broken"): 150,
                   ("val", "normal"): 150}


def test_paper_preset_scales_counts():
    videos = fake_videos(414, 90 / 414, generators=("g1",))  # a tenth of the paper: 324 broken + 90 normal
    assert paper_counts(videos) == {"train": {"broken": 309, "normal": 75}, "val": {"broken": 15, "normal": 15}}
    splits = make_splits(videos, {"by": "paper"}, seed=0)
    got = videos.merge(splits, on="video_id").groupby(["split", "label"]).size().to_dict()
    assert got == {("train", "broken"): 309, ("train", "normal"): 75, ("val", "broken"): 15, ("val", "normal"): 15}
    # real videos do not count towards the scale
    with_real = fake_videos(414, 90 / 414, generators=("g1", "cam"))
    assert paper_counts(with_real) == paper_counts(videos)
    _check_grouped(with_real, make_splits(with_real, {"by": "paper"}, seed=0))


def test_count_split_leaves_surplus_out_and_keeps_groups():
    videos = fake_videos(100, 0.5, generators=("g1", "g2"))
    counts = {"train": {"broken": 40, "normal": 30}, "val": {"broken": 10, "normal": 10}}
    splits = make_splits(videos, {"by": "counts", **counts}, seed=0)
    merged = _check_grouped(videos, splits)
    got = merged.groupby(["split", "label"]).size().to_dict()
    assert got == {("train", "broken"): 40, ("train", "normal"): 30, ("val", "broken"): 10, ("val", "normal"): 10}
    assert len(splits) == 90 < len(videos)


# ---- statistics -----------------------------------------------------------------------------------------

def test_region_bucket_labels():
    assert [region_bucket(n) for n in (0, 1, 2, 3, 6, 7, 10, 11)] == ["0", "1-2", "1-2", "3-6", "3-6", "7-10",
                                                                      "7-10", ">10"]


def test_stats_buckets_and_counts():
    instances = [1, 1, 2, 3, 6, 7, 11]
    rows = [{"video_id": f"b{i}", "prompt_id": f"p{i}", "generator": "g1", "label": "broken", "num_instances": n,
             "num_frames": 6, "width": 64, "height": 48, "mask_pixels": 100 * n,
             "instance_subcategories": json.dumps({str(k): "motion_anomaly" if k == 1 else "visual_breakdown"
                                                   for k in range(1, n + 1)})}
            for i, n in enumerate(instances)]
    rows += [{"video_id": f"n{i}", "prompt_id": f"q{i}", "generator": "g2", "label": lbl, "num_instances": 0,
              "num_frames": 8, "width": 64, "height": 48, "mask_pixels": 0, "instance_subcategories": "{}"}
             for i, lbl in enumerate(["normal", "normal", "real"])]
    videos = pd.DataFrame(rows)
    prompts = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(7)] + ["q0", "q1", "q2"],
                            "scene": ["human"] * 5 + ["vehicle"] * 2 + ["urban"] * 3,
                            "category": ["technical"] * 7 + ["normal"] * 3,
                            "subcategory": ["motion_anomaly"] * 7 + ["normal"] * 3})
    splits = pd.DataFrame({"video_id": ["b0", "b1", "n0"], "split": ["train", "train", "val"]})
    stats = dataset_stats(videos, prompts, splits)
    assert stats["regions_per_broken_video"] == {"1-2": round(3 / 7, 4), "3-6": round(2 / 7, 4),
                                                 "7-10": round(1 / 7, 4), ">10": round(1 / 7, 4)}
    assert stats["region_buckets_paper"] == {"1-2": 0.8, "3-6": 0.17, "7-10": 0.03}
    assert stats["num_videos"] == 10 and stats["num_frames_total"] == 7 * 6 + 3 * 8
    assert stats["num_artifact_regions"] == sum(instances)
    assert stats["labels"] == {"broken": 7, "normal": 2, "real": 1}
    assert stats["label_by_generator"] == {"g1": {"broken": 7}, "g2": {"normal": 2, "real": 1}}
    assert stats["splits"] == {"train": {"broken": 2}, "val": {"normal": 1},
                               "unassigned": {"broken": 5, "normal": 1, "real": 1}}
    assert stats["scene_shares"] == {"human": 0.5, "urban": 0.3, "vehicle": 0.2}
    assert stats["category_shares_broken"] == {"technical": 1.0}
    n_inst = sum(instances)
    assert stats["instance_subcategory_shares"] == {"motion_anomaly": round(7 / n_inst, 4),
                                                    "visual_breakdown": round((n_inst - 7) / n_inst, 4)}
    assert stats["mask_coverage_broken"] == round(100 * n_inst / (7 * 6 * 64 * 48), 4)
    assert stats["frames_per_video"] == {"min": 6, "max": 8, "mean": 6.6}


# ---- the dataset step on a real tiny run ----------------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A complete prompts → generate → annotate → dataset run of the tiny config (12 prompts)."""
    config = write_config(tmp_path_factory.mktemp("good"), prompts={"num_prompts": 12, "normal_fraction": 0.25})
    run_pipeline(config)
    return config.parent


def dataset_args(root: Path) -> list[str]:
    shards = shards_of(root / "config.yaml")
    return ["dataset", "--config", "config.yaml",
            "--videos", *[f"results/videos/{g}/shard-{k}.parquet" for g, k in shards],
            "--annotations", *[f"results/annotations/{g}/shard-{k}.parquet" for g, k in shards],
            "--out-dir", "results/dataset"]


def test_good_run_dataset_outputs(good_run):
    out = good_run / "results/dataset"
    videos = read_table(out / "videos.parquet", kind="videos")
    splits = read_table(out / "splits.parquet", kind="splits")
    stats = json.loads((out / "stats.json").read_text())
    assert len(videos) == 12 * 3 and videos.video_id.is_unique
    assert stats["labels"] == {"broken": 18, "normal": 6, "real": 12}  # 9 broken + 3 normal prompts × 2 generated
    assert stats["generators"] == {"real-camera": 12, "synth-grainy": 12, "synth-upsampler": 12}
    _check_grouped(videos, splits)
    assert len(splits) == len(videos)
    broken = videos[videos.label == "broken"]
    assert (broken.num_instances >= 1).all() and (broken.mask_pixels > 0).all()
    assert (videos[videos.label != "broken"].mask_pixels == 0).all()
    assert sum(stats["regions_per_broken_video"].values()) == pytest.approx(1.0, abs=1e-3)
    assert stats["num_artifact_regions"] == int(broken.num_instances.sum())
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["categories.png", "labels_by_generator.png", "regions_per_video.png", "scenes.png",
                       "splits.png"]
    for name in figures:
        with Image.open(out / "figures" / name) as im:
            assert im.size[0] > 100 and im.size[1] > 100


def test_dataset_rerun_is_byte_identical(good_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(good_run, root)
    result = run_cli(dataset_args(root), cwd=root)
    assert result.code == 0, result.stderr
    for name in ("videos.parquet", "splits.parquet", "stats.json"):
        assert (root / "results/dataset" / name).read_bytes() == (good_run / "results/dataset" / name).read_bytes()


def _broken_video(root: Path) -> tuple[str, Path]:
    """A broken video of the grainy generator: (video_id, mp4 path relative to root)."""
    manifest = read_table(root / "results/videos/synth-grainy/shard-0.parquet")
    row = manifest[manifest.label == "broken"].iloc[0]
    return row.video_id, Path(row.path)


def _zero_byte(root, vid, mp4):
    (root / mp4).write_bytes(b"")
    return mp4, "video file is empty (0 bytes)"


def _truncated(root, vid, mp4):
    data = (root / mp4).read_bytes()
    (root / mp4).write_bytes(data[: len(data) // 2])
    return mp4, "cannot decode video"  # the mp4 index (moov) is written last: half a file has none


def _not_a_video(root, vid, mp4):
    (root / mp4).write_text("video_id,label\nx,broken\n" * 50)  # a CSV renamed .mp4
    return mp4, "cannot decode video"


def _image_as_video(root, vid, mp4):
    # FFmpeg opens a PNG as a one-frame video: caught by the frame count, not the decoder
    (root / mp4).write_bytes(encode_mask(np.zeros((48, 64), np.uint8)))
    return mp4, "manifest says num_frames=6, file has 1"


def _wrong_size_mask(root, vid, mp4):
    png = Path("results/masks") / vid / "00002.png"
    (root / png).write_bytes(encode_mask(np.zeros((24, 32), np.uint8)))
    return png, "mask is 32x24, video is 64x48"


def _missing_mask_frame(root, vid, mp4):
    (root / "results/masks" / vid / "00005.png").unlink()
    return Path("results/masks") / vid, "5 mask frames for a video of 6 frames"


def _unknown_label(root, vid, mp4):
    path = root / "results/videos/synth-grainy/shard-0.parquet"
    manifest = read_table(path)
    manifest.loc[manifest.video_id == vid, "label"] = "fake"
    write_table(manifest, path, kind="videos")
    return mp4, "unknown label 'fake' (expected one of broken, normal, real)"


@pytest.mark.parametrize("corrupt", [_zero_byte, _truncated, _not_a_video, _image_as_video,
                                     _wrong_size_mask, _missing_mask_frame,
                                     _unknown_label], ids=lambda f: f.__name__.strip("_"))
def test_bad_input_fails_with_one_line_and_keeps_previous_outputs(good_run, tmp_path, corrupt):
    root = tmp_path / "copy"
    shutil.copytree(good_run, root)
    out = root / "results/dataset"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    vid, mp4 = _broken_video(root)
    named, problem = corrupt(root, vid, mp4)
    result = run_cli(dataset_args(root), cwd=root)
    assert result.code == 2
    line = result.error
    assert line.startswith("error: 1 invalid video(s); first: "), line
    assert f"{named}: " in line, line
    assert problem in line, line
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # videos.parquet, splits, stats and figures byte-identical
    assert not [p for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_every_bad_video_is_reported_before_failing(good_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(good_run, root)
    manifest = read_table(root / "results/videos/synth-upsampler/shard-0.parquet")
    paths = [Path(p) for p in manifest.path[:2]]
    for p in paths:
        (root / p).write_bytes(b"")
    result = run_cli(dataset_args(root), cwd=root)
    assert result.code == 2
    assert result.error.startswith("error: 2 invalid video(s); first: ")
    for p in paths:
        assert f"{p}: video file is empty (0 bytes)" in result.stderr


def test_failed_generation_rows_are_left_out(good_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(good_run, root)
    path = root / "results/videos/synth-grainy/shard-0.parquet"
    manifest = read_table(path)
    vid = manifest.video_id.iloc[0]
    manifest.loc[0, ["status", "error"]] = ["error", "RuntimeError: out of memory"]
    write_table(manifest, path, kind="videos")
    result = run_cli(dataset_args(root), cwd=root)  # generate.allow_failures defaults to 0
    assert result.code == 2 and result.error.startswith(f"error: {vid}: generation failed")
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    (root / "config.yaml").write_text(yaml.safe_dump({**cfg, "generate": {"allow_failures": 1}}))
    result = run_cli(dataset_args(root), cwd=root)
    assert result.code == 0, result.stderr
    videos = read_table(root / "results/dataset/videos.parquet")
    assert len(videos) == 12 * 3 - 1 and vid not in set(videos.video_id)
    assert f"left out {vid}: generation failed (RuntimeError: out of memory)" in result.stderr


def test_a_rerun_sweeps_what_a_killed_run_left_half_written(good_run, tmp_path):
    """A kill inside the figures' atomic_dir (no `finally` runs on SIGKILL) leaves its temporary
    folder; the next run removes it and leaves other writers' temporaries alone."""
    root = tmp_path / "copy"
    shutil.copytree(good_run, root)
    out = root / "results/dataset"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / ".tmp-figures-abc123").mkdir()
    (out / ".tmp-figures-abc123" / "scenes.png").write_bytes(b"half")
    (out / ".tmp-videos-xyz.parquet").write_bytes(b"half")
    (out / ".tmp-quality-1.parquet").write_bytes(b"another step's")
    assert run_cli(dataset_args(root), cwd=root).code == 0
    left = sorted(p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-")))
    assert left == [".tmp-quality-1.parquet"]
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")}
    assert after == before
