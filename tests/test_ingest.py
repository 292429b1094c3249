"""ingest: existing folders of videos (generic with a labels CSV and DAVIS masks; VID-AID real/ fake/<gen>/)
become videos manifests with masks under results/masks; bad input fails with one line, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_config

from brokenvideos.io.masks import encode_mask, read_instances, read_video_masks, write_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video, sha256_file, write_video

T, H, W = 4, 24, 32


def _frames(seed: int, t: int = T) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, H, W, 3), dtype=np.uint8)


def _masks(seed: int, ids=(1,)) -> np.ndarray:
    vol = np.zeros((T, H, W), np.uint8)
    for k in ids:
        vol[:, 2 * k:2 * k + 5, 3 * k:3 * k + 6] = k
    return vol


@pytest.fixture
def generic(tmp_path) -> Path:
    """data/myset: four videos, masks for two of them, a labels CSV for two.

    clip_a   CSV: broken, prompt_id pa, generator gen-a          masks with ids 1, 2 + instances.json
    clip_b   not in CSV                                          masks with id 1, no instances.json
    sub/gen-x/clip_c   CSV (by relative path): normal, text      no masks
    clip_d   not in CSV                                          no masks → default label
    """
    root = tmp_path / "data/myset"
    for i, rel in enumerate(["clip_a.mp4", "clip_b.mp4", "sub/gen-x/clip_c.mp4", "clip_d.mp4"]):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, _frames(i), fps=5)
    masks = tmp_path / "data/myset_masks"
    write_video_masks(masks / "clip_a", _masks(0, ids=(1, 2)), {1: "motion_anomaly", 2: "visual_breakdown"})
    write_video_masks(masks / "clip_b", _masks(1), {})
    (masks / "clip_b" / "instances.json").unlink()
    (tmp_path / "data/labels.csv").write_text(
        "video,label,prompt_id,generator,text\n"
        "clip_a,broken,pa,gen-a,\n"
        "sub/gen-x/clip_c.mp4,normal,,,a calm lake\n")
    return tmp_path


def ingest_args(name="myset", root="data/myset", labels=True, masks=True, *extra) -> list[str]:
    args = ["ingest", "--root", root, "--name", name, "--out", f"results/ingest/{name}.parquet", "--results", "results"]
    if labels:
        args += ["--labels-csv", "data/labels.csv"]
    if masks:
        args += ["--masks-dir", "data/myset_masks"]
    return args + list(extra)


def test_generic_folder_manifest(generic):
    result = run_cli(ingest_args(), cwd=generic)
    assert result.code == 0, result.stderr
    df = read_table(generic / "results/ingest/myset.parquet", kind="videos").set_index("video_id")
    assert list(df.index) == ["myset-clip_a", "myset-clip_b", "myset-clip_d", "myset-sub_gen-x_clip_c"]
    assert df.label.to_dict() == {"myset-clip_a": "broken", "myset-clip_b": "broken", "myset-clip_d": "normal",
                                  "myset-sub_gen-x_clip_c": "normal"}
    assert df.generator.to_dict() == {"myset-clip_a": "gen-a", "myset-clip_b": "myset", "myset-clip_d": "myset",
                                      "myset-sub_gen-x_clip_c": "gen-x"}
    assert df.prompt_id.to_dict() == {"myset-clip_a": "pa", "myset-clip_b": "myset-clip_b",
                                      "myset-clip_d": "myset-clip_d", "myset-sub_gen-x_clip_c": "myset-clip_c"}
    assert df.num_instances.to_dict() == {"myset-clip_a": 2, "myset-clip_b": 1, "myset-clip_d": 0,
                                          "myset-sub_gen-x_clip_c": 0}
    assert df.loc["myset-sub_gen-x_clip_c", "text"] == "a calm lake"
    assert (df.source == "ingest:myset").all()
    assert (df.num_frames == T).all() and (df.width == W).all() and (df.height == H).all()
    assert (df.fps == 5.0).all()
    assert df.loc["myset-clip_a", "path"] == "data/myset/clip_a.mp4"
    for vid, row in df.iterrows():
        assert row.sha256 == sha256_file(generic / row.path)
        assert row.mask_dir == f"results/masks/{vid}"
        assert json.loads((generic / row.mask_dir / "annotation.json").read_text()) == {"annotator": "import"}


def test_generic_folder_masks_copied(generic):
    assert run_cli(ingest_args(), cwd=generic).code == 0
    masks = generic / "results/masks"
    np.testing.assert_array_equal(read_video_masks(masks / "myset-clip_a", T, (H, W)), _masks(0, ids=(1, 2)))
    assert read_instances(masks / "myset-clip_a") == {1: "motion_anomaly", 2: "visual_breakdown"}
    # copied PNGs are the source PNGs byte for byte (same palette encoder)
    for t in range(T):
        name = f"{t:05d}.png"
        assert (masks / "myset-clip_a" / name).read_bytes() == (generic / "data/myset_masks/clip_a" / name).read_bytes()
    np.testing.assert_array_equal(read_video_masks(masks / "myset-clip_b", T, (H, W)), _masks(1))
    assert read_instances(masks / "myset-clip_b") == {1: "unknown"}  # no instances.json at the source
    for vid in ("myset-clip_d", "myset-sub_gen-x_clip_c"):  # unannotated normal videos: all-zero masks
        vol = read_video_masks(masks / vid, T, (H, W))
        assert vol.shape == (T, H, W) and not vol.any()
        assert read_instances(masks / vid) == {}


def test_ingested_manifest_builds_a_dataset(generic):
    assert run_cli(ingest_args(), cwd=generic).code == 0
    config = write_config(generic, dataset={"split": {"by": "ratios", "train": 0.5, "val": 0.5, "test": 0.0}})
    result = run_cli(["dataset", "--config", config, "--videos", "results/ingest/myset.parquet",
                      "--out-dir", "results/dataset"], cwd=generic)
    assert result.code == 0, result.stderr
    videos = read_table(generic / "results/dataset/videos.parquet", kind="videos").set_index("video_id")
    assert videos.num_instances.to_dict() == {"myset-clip_a": 2, "myset-clip_b": 1, "myset-clip_d": 0,
                                              "myset-sub_gen-x_clip_c": 0}
    assert videos.loc["myset-clip_a", "mask_pixels"] == int((_masks(0, ids=(1, 2)) > 0).sum())
    splits = read_table(generic / "results/dataset/splits.parquet", kind="splits")
    assert sorted(splits.video_id) == sorted(videos.index)


def test_vid_aid_layout(tmp_path):
    root = tmp_path / "vidaid"
    layout = ["real/r1.mp4", "real/r2.mp4", "fake/sora/f1.mp4", "fake/pika/f2.mp4", "fake/pika/f3.mp4"]
    for i, rel in enumerate(layout):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, _frames(10 + i), fps=8)
    result = run_cli(["ingest", "--root", "vidaid", "--name", "vidaid", "--out", "results/ingest/vidaid.parquet",
                      "--results", "results"], cwd=tmp_path)
    assert result.code == 0, result.stderr
    df = read_table(tmp_path / "results/ingest/vidaid.parquet", kind="videos").set_index("video_id")
    assert df.label.to_dict() == {"vidaid-real_r1": "real", "vidaid-real_r2": "real", "vidaid-fake_sora_f1": "normal",
                                  "vidaid-fake_pika_f2": "normal", "vidaid-fake_pika_f3": "normal"}
    assert df.generator.to_dict() == {"vidaid-real_r1": "real", "vidaid-real_r2": "real",
                                      "vidaid-fake_sora_f1": "sora", "vidaid-fake_pika_f2": "pika",
                                      "vidaid-fake_pika_f3": "pika"}
    assert (df.fps == 8.0).all()
    for vid in df.index:
        assert not read_video_masks(tmp_path / "results/masks" / vid, T, (H, W)).any()


def test_ingested_video_bytes_are_untouched(generic):
    before = {p: p.read_bytes() for p in (generic / "data").rglob("*") if p.is_file()}
    assert run_cli(ingest_args(), cwd=generic).code == 0
    assert {p: p.read_bytes() for p in (generic / "data").rglob("*") if p.is_file()} == before
    np.testing.assert_array_equal(read_video(generic / "data/myset/clip_d.mp4").shape, (T, H, W, 3))


# ---- bad input: exit 2, one line naming the file, nothing written --------------------------------------

def _zero_byte(root):
    (root / "data/myset/clip_b.mp4").write_bytes(b"")
    return "data/myset/clip_b.mp4", "video file is empty (0 bytes)"


def _truncated(root):
    p = root / "data/myset/clip_b.mp4"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return "data/myset/clip_b.mp4", "cannot decode video"


def _not_a_video(root):
    (root / "data/myset/clip_b.mp4").write_text("this is a text file\n" * 40)
    return "data/myset/clip_b.mp4", "cannot decode video"


def _wrong_size_mask(root):
    (root / "data/myset_masks/clip_b/00001.png").write_bytes(encode_mask(np.zeros((H // 2, W // 2), np.uint8)))
    return "data/myset_masks/clip_b/00001.png", f"mask is {W // 2}x{H // 2}, video is {W}x{H}"


def _missing_mask_frame(root):
    (root / "data/myset_masks/clip_a/00003.png").unlink()
    return "data/myset_masks/clip_a", f"3 mask frames for a video of {T} frames"


def _unknown_label(root):
    with open(root / "data/labels.csv", "a") as fh:
        fh.write("clip_d,deepfake,,,\n")
    return "data/labels.csv", "row 4: unknown label 'deepfake' (expected one of broken, normal, real)"


def _csv_without_label_column(root):
    (root / "data/labels.csv").write_text("video,kind\nclip_a,broken\n")
    return "data/labels.csv", "labels CSV needs columns video,label; has ['video', 'kind']"


def _bad_instances_json(root):
    (root / "data/myset_masks/clip_a/instances.json").write_text("{not json")
    return "data/myset_masks/clip_a/instances.json", "bad instances.json"


BAD = [_zero_byte, _truncated, _not_a_video, _wrong_size_mask, _missing_mask_frame, _unknown_label,
       _csv_without_label_column, _bad_instances_json]


@pytest.mark.parametrize("corrupt", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_exit_2_one_line_nothing_written(generic, corrupt):
    named, problem = corrupt(generic)
    result = run_cli(ingest_args(), cwd=generic)
    assert result.code == 2
    line = result.error
    assert line.startswith(f"error: {named}: "), line
    assert problem in line, line
    assert not (generic / "results").exists()


def test_empty_root_and_missing_root(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("no videos here")
    result = run_cli(["ingest", "--root", "empty", "--name", "x", "--out", "results/x.parquet"], cwd=tmp_path)
    assert (result.code, result.error) == (2, "error: empty: no video files found")
    result = run_cli(["ingest", "--root", "nowhere", "--name", "x", "--out", "results/x.parquet"], cwd=tmp_path)
    assert (result.code, result.error) == (2, "error: nowhere: ingest root is not a directory")
    assert not (tmp_path / "results").exists()


def test_bad_dataset_name(generic):
    result = run_cli(ingest_args(name="my set"), cwd=generic)
    assert result.code == 2
    assert result.error == "error: --name 'my set': use letters, digits, '_', '.', '-'"
    assert not (generic / "results").exists()


def test_broken_label_without_masks_writes_nothing(generic):
    # clip_d sorts after clip_a and clip_b, whose masks would be written first
    with open(generic / "data/labels.csv", "a") as fh:
        fh.write("clip_d,broken,,,\n")
    result = run_cli(ingest_args(), cwd=generic)
    assert result.code == 2
    assert result.error == "error: data/myset/clip_d.mp4: labelled broken but has no masks"
    assert not (generic / "results/ingest/myset.parquet").exists()
    assert not (generic / "results").exists(), sorted(str(p.relative_to(generic)) for p in
                                                      (generic / "results").rglob("*"))[:5]


def test_broken_label_without_masks_is_an_error(generic):
    with open(generic / "data/labels.csv", "a") as fh:
        fh.write("clip_d,broken,,,\n")
    result = run_cli(ingest_args(), cwd=generic)
    assert result.code == 2
    assert result.error == "error: data/myset/clip_d.mp4: labelled broken but has no masks"
    assert not (generic / "results/ingest/myset.parquet").exists()


def test_reingest_after_fix_succeeds(generic):
    shutil.copy(generic / "data/myset/clip_a.mp4", generic / "data/myset/clip_a.bak")
    (generic / "data/myset/clip_a.mp4").write_bytes(b"")
    assert run_cli(ingest_args(), cwd=generic).code == 2
    shutil.move(generic / "data/myset/clip_a.bak", generic / "data/myset/clip_a.mp4")
    assert run_cli(ingest_args(), cwd=generic).code == 0
    assert len(read_table(generic / "results/ingest/myset.parquet")) == 4
