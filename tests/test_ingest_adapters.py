"""ingest --format: each named layout (dataset/adapters/) gives the right manifest rows and masks,
and a bad layout fails with one line naming the file and saying what was found."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli, write_config
from PIL import Image

from brokenvideos.io.colour import rgb_to_yuv420p, yuv420p_to_rgb
from brokenvideos.io.masks import encode_mask, read_instances, read_video_masks, write_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video, sha256_file, write_video

T, H, W = 4, 24, 32


def _frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, 3), dtype=np.uint8)


def _smooth(seed: int) -> np.ndarray:
    """Gradients: survive JPEG and 4:2:0 nearly intact."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([np.stack([(x * 6 + t * 9 + seed) % 256, (y * 8 + seed) % 256, np.full_like(x, 128)], -1)
                     for t in range(T)]).astype(np.uint8)


def _box(k: int, t0: int = 0) -> np.ndarray:
    vol = np.zeros((T, H, W), np.uint8)
    vol[t0:, 2 * k:2 * k + 5, 3 * k:3 * k + 6] = k
    return vol


def _video(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, _frames(seed), fps=5)


def _jpegs(folder, seed):
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(_smooth(seed)):
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=95)


def ingest(cwd, fmt, name, root, *extra):
    return run_cli(["ingest", "--format", fmt, "--root", root, "--name", name,
                    "--out", f"results/ingest/{name}.parquet", *extra], cwd=cwd)


def manifest(cwd, name):
    return read_table(cwd / f"results/ingest/{name}.parquet", kind="videos").set_index("video_id")


def assert_bad(result, cwd, line):
    assert (result.code, result.error) == (2, f"error: {line}")
    assert not (cwd / "results").exists()


# ---- brokenvideos ----------------------------------------------------------------------------------

@pytest.fixture
def bv_png(tmp_path):
    root = tmp_path / "bv"
    for i, vid in enumerate(["Cog5B_00000", "Wan_00001", "Sora_00002"]):
        _video(root / "videos" / f"{vid}.mp4", i)
    write_video_masks(root / "masks/Cog5B_00000", np.maximum(_box(1), _box(2, t0=2)), {})
    (root / "masks/Cog5B_00000/instances.json").unlink()
    write_video_masks(root / "masks/Wan_00001", np.zeros((T, H, W), np.uint8), {})
    return tmp_path


def test_brokenvideos_png_masks(bv_png):
    result = ingest(bv_png, "brokenvideos", "bv", "bv", "--option", "generators={Sora: OpenAI-Sora}")
    assert result.code == 0, result.stderr
    df = manifest(bv_png, "bv")
    assert df.generator.to_dict() == {"bv-Cog5B_00000": "CogVideoX-5B", "bv-Sora_00002": "OpenAI-Sora",
                                      "bv-Wan_00001": "Wan2.1"}
    assert df.label.to_dict() == {"bv-Cog5B_00000": "broken", "bv-Sora_00002": "normal", "bv-Wan_00001": "normal"}
    assert df.num_instances.to_dict() == {"bv-Cog5B_00000": 2, "bv-Sora_00002": 0, "bv-Wan_00001": 0}
    assert df.loc["bv-Cog5B_00000", "path"] == "bv/videos/Cog5B_00000.mp4"
    vol = read_video_masks(bv_png / "results/masks/bv-Cog5B_00000", T, (H, W))
    np.testing.assert_array_equal(vol, np.maximum(_box(1), _box(2, t0=2)))
    assert read_instances(bv_png / "results/masks/bv-Cog5B_00000") == {1: "unknown", 2: "unknown"}


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()}


@pytest.fixture
def bv_rle(tmp_path):
    root = tmp_path / "bv"
    for i, vid in enumerate(["Cog2B_00000", "Hunyuan_00001"]):
        _jpegs(root / "JPEGImages" / vid, i)
    frames = [f"{t:05d}" for t in range(T)]
    meta = {"videos": {"Cog2B_00000": {"frames": frames, "expressions": {
        "0": {"exp": "the hand melts", "anno_id": [7]}, "1": {"exp": "a leg appears", "anno_id": [8]}}}}}
    masks = {"7": [_rle(m) for m in _box(1) > 0], "8": [None, None] + [_rle(m) for m in _box(2)[2:] > 0]}
    (root / "meta_expressions.json").write_text(json.dumps(meta))
    (root / "mask_dict.json").write_text(json.dumps(masks))
    return tmp_path


def test_brokenvideos_rle_masks_and_frames_folders(bv_rle):
    result = ingest(bv_rle, "brokenvideos", "bv", "bv", "--fps", "8")
    assert result.code == 0, result.stderr
    df = manifest(bv_rle, "bv")
    assert df.generator.to_dict() == {"bv-Cog2B_00000": "CogVideoX-2B", "bv-Hunyuan_00001": "HunyuanVideo"}
    assert df.label.to_dict() == {"bv-Cog2B_00000": "broken", "bv-Hunyuan_00001": "normal"}
    assert df.loc["bv-Cog2B_00000", "text"] == "the hand melts; a leg appears"
    assert df.loc["bv-Cog2B_00000", "path"] == "bv/JPEGImages/Cog2B_00000"
    assert (df.fps == 8.0).all() and (df.num_frames == T).all()
    expected = _box(1).copy()
    expected[2:][_box(2)[2:] > 0] = 2
    np.testing.assert_array_equal(read_video_masks(bv_rle / "results/masks/bv-Cog2B_00000", T, (H, W)), expected)


def test_brokenvideos_unknown_layout_says_what_it_found(bv_png):
    (bv_png / "other").mkdir()
    (bv_png / "other/readme.txt").write_text("x")
    (bv_png / "other/clips").mkdir()
    assert_bad(ingest(bv_png, "brokenvideos", "bv", "other"), bv_png,
               "other: no videos (expected video files under the root or JPEGImages/<id>/ frame folders); "
               "found clips/, readme.txt")
    shutil.rmtree(bv_png / "bv/masks")
    assert_bad(ingest(bv_png, "brokenvideos", "bv", "bv"), bv_png,
               "bv: no masks (expected bv/masks/<id>/<frame>.png or mask_dict.json + meta_expressions.json); "
               "found videos/")


def test_brokenvideos_unknown_prefix_names_the_video(bv_png):
    _video(bv_png / "bv/videos/Veo_00009.mp4", 9)
    result = ingest(bv_png, "brokenvideos", "bv", "bv")
    assert result.code == 2
    assert result.error.startswith("error: bv/videos/Veo_00009.mp4: unknown generator prefix 'Veo' (known: ")
    assert result.error.endswith("map it in generators: {Veo: <name>}")


def test_brokenvideos_bad_rle_names_the_file(bv_rle):
    masks = json.loads((bv_rle / "bv/mask_dict.json").read_text())
    masks["8"] = masks["8"][:3]
    (bv_rle / "bv/mask_dict.json").write_text(json.dumps(masks))
    assert_bad(ingest(bv_rle, "brokenvideos", "bv", "bv"), bv_rle,
               "bv/mask_dict.json: video Cog2B_00000: annotation 8 has 3 frames, video has 4")


# ---- genvideo, d3 ------------------------------------------------------------------------------------

@pytest.fixture
def lists(tmp_path):
    root = tmp_path / "gv"
    for i, rel in enumerate(["Sora/a.mp4", "real/b.mp4", "Pika/c.mp4"]):
        _video(root / rel, 20 + i)
    (root / "train.csv").write_text("content_path,label\nSora/a.mp4,1\nreal/b.mp4,0\n")
    (root / "test.csv").write_text("content_path,label\nPika/c.mp4,1\n")
    return tmp_path


def test_genvideo_lists(lists):
    assert ingest(lists, "genvideo", "gv", "gv").code == 0
    df = manifest(lists, "gv")
    assert df.generator.to_dict() == {"gv-Pika_c": "Pika", "gv-Sora_a": "Sora", "gv-real_b": "real"}
    assert df.label.to_dict() == {"gv-Pika_c": "normal", "gv-Sora_a": "normal", "gv-real_b": "real"}
    assert df.num_instances.sum() == 0


def test_genvideo_path_column_and_chosen_list(lists):
    (lists / "gv/test.csv").write_text("path,label,generator\nPika/c.mp4,fake,pika-1.0\n")
    assert ingest(lists, "genvideo", "gv", "gv", "--option", "lists=test.csv").code == 0
    assert manifest(lists, "gv").generator.to_dict() == {"gv-Pika_c": "pika-1.0"}


def test_genvideo_bad_label_names_the_list(lists):
    (lists / "gv/train.csv").write_text("content_path,label\nSora/a.mp4,1\nreal/b.mp4,2\n")
    assert_bad(ingest(lists, "genvideo", "gv", "gv"), lists, "gv/train.csv: row 3: label '2' is not 0/1 (real/fake)")


def test_d3_lists_and_its_columns(lists):
    assert ingest(lists, "d3", "d3", "gv", "--option", "lists=[train.csv]").code == 0
    assert manifest(lists, "d3").label.to_dict() == {"d3-Sora_a": "normal", "d3-real_b": "real"}
    (lists / "gv/train.csv").write_text("path,label\nSora/a.mp4,1\n")
    (lists / "results").rename(lists / "old")
    assert_bad(ingest(lists, "d3", "d3", "gv", "--option", "lists=train.csv"), lists,
               "gv/train.csv: CSV list needs columns content_path,label; has ['path', 'label']")


def test_list_naming_a_missing_video_names_it(lists):
    with open(lists / "gv/test.csv", "a") as fh:
        fh.write("Pika/gone.mp4,1\n")
    assert_bad(ingest(lists, "genvideo", "gv", "gv"), lists, "gv/Pika/gone.mp4: video file is missing")


# ---- aigvdet -----------------------------------------------------------------------------------------

def test_aigvdet_class_folders(tmp_path):
    root = tmp_path / "ag"
    _video(root / "moonvalley/0_real/v1.mp4", 30)
    _video(root / "moonvalley/1_fake/v2.mp4", 31)
    _jpegs(root / "pika/1_fake/v3", 32)
    assert ingest(tmp_path, "aigvdet", "ag", "ag").code == 0
    df = manifest(tmp_path, "ag")
    assert df.generator.to_dict() == {"ag-moonvalley_0_real_v1": "real", "ag-moonvalley_1_fake_v2": "moonvalley",
                                      "ag-pika_1_fake_v3": "pika"}
    assert df.label.to_dict() == {"ag-moonvalley_0_real_v1": "real", "ag-moonvalley_1_fake_v2": "normal",
                                  "ag-pika_1_fake_v3": "normal"}
    assert df.loc["ag-pika_1_fake_v3", "fps"] == 24.0


def test_aigvdet_without_class_folders(tmp_path):
    _video(tmp_path / "ag/real/v1.mp4", 30)
    assert_bad(ingest(tmp_path, "aigvdet", "ag", "ag"), tmp_path, "ag: no 0_real/ or 1_fake/ folders; found real")


# ---- davis -------------------------------------------------------------------------------------------

@pytest.fixture
def davis(tmp_path):
    root = tmp_path / "dv"
    for i, vid in enumerate(["bear", "cows"]):
        _jpegs(root / "JPEGImages/480p" / vid, 40 + i)
    ann = root / "Annotations/480p/bear"
    ann.mkdir(parents=True)
    for t, m in enumerate(np.maximum(_box(1), _box(2, t0=1))):
        (ann / f"{t:05d}.png").write_bytes(encode_mask(m))
    return tmp_path


def test_davis_frames_folders_build_a_dataset(davis):
    result = ingest(davis, "davis", "dv", "dv", "--option", "generator=gen-x")
    assert result.code == 0, result.stderr
    df = manifest(davis, "dv")
    assert df.path.to_dict() == {"dv-bear": "dv/JPEGImages/480p/bear", "dv-cows": "dv/JPEGImages/480p/cows"}
    assert df.label.to_dict() == {"dv-bear": "broken", "dv-cows": "normal"}
    assert (df.generator == "gen-x").all() and (df.fps == 24.0).all()
    assert df.loc["dv-bear", "sha256"] == sha256_file(davis / "dv/JPEGImages/480p/bear")
    np.testing.assert_array_equal(read_video_masks(davis / "results/masks/dv-bear", T, (H, W)), np.maximum(_box(1), _box(2, t0=1)))
    assert read_video(davis / "dv/JPEGImages/480p/bear").shape == (T, H, W, 3)
    # the frames folder is a video downstream too: the dataset step validates it
    config = write_config(davis, dataset={"split": {"by": "ratios", "train": 0.5, "val": 0.5, "test": 0.0}})
    result = run_cli(["dataset", "--config", config, "--videos", "results/ingest/dv.parquet",
                      "--out-dir", "results/dataset"], cwd=davis)
    assert result.code == 0, result.stderr
    videos = read_table(davis / "results/dataset/videos.parquet", kind="videos").set_index("video_id")
    assert videos.mask_pixels.to_dict() == {"dv-bear": int((np.maximum(_box(1), _box(2, t0=1)) > 0).sum()), "dv-cows": 0}


def test_davis_encode_writes_lossless_mp4(davis):
    assert ingest(davis, "davis", "dv", "dv", "--encode", "--fps", "12").code == 0
    df = manifest(davis, "dv")
    assert df.path.to_dict() == {"dv-bear": "results/ingest/dv/videos/bear.mp4",
                                 "dv-cows": "results/ingest/dv/videos/cows.mp4"}
    assert df.source_frames.to_dict() == {"dv-bear": "dv/JPEGImages/480p/bear", "dv-cows": "dv/JPEGImages/480p/cows"}
    assert (df.fps == 12.0).all()
    mp4 = read_video(davis / "results/ingest/dv/videos/bear.mp4").astype(int)
    jpg = read_video(davis / "dv/JPEGImages/480p/bear").astype(int)
    assert mp4.shape == jpg.shape == (T, H, W, 3)
    # qp 0 is lossless: the mp4 holds exactly the frames' exact 4:2:0 conversion
    through_yuv = np.stack([yuv420p_to_rgb(rgb_to_yuv420p(f.astype(np.uint8)), H, W) for f in jpg])
    np.testing.assert_array_equal(mp4, through_yuv)
    assert df.loc["dv-bear", "sha256"] == sha256_file(davis / "results/ingest/dv/videos/bear.mp4")


def test_davis_missing_annotation_frame_names_it(davis):
    (davis / "dv/Annotations/480p/bear/00003.png").unlink()
    assert_bad(ingest(davis, "davis", "dv", "dv"), davis,
               "dv/Annotations/480p/bear/00003.png: mask frame is missing (1 of 4 missing)")


def test_davis_wrong_layout_says_what_it_found(tmp_path):
    _jpegs(tmp_path / "dv/JPEGImages/bear", 1)
    assert_bad(ingest(tmp_path, "davis", "dv", "dv"), tmp_path,
               "dv: no JPEGImages/480p/ folder (the DAVIS layout); found JPEGImages")
    assert ingest(tmp_path, "davis", "dv", "dv", "--option", "resolution=''").code == 0


def test_unknown_option_is_refused(davis):
    result = ingest(davis, "davis", "dv", "dv", "--option", "masks_layout=png")
    assert result.code == 2
    assert result.error.startswith("error: dataset.ingest dv: format 'davis' does not take masks_layout; it takes ")


def test_aigvdet_nested_splits_take_the_folder_above_the_class(tmp_path):
    _video(tmp_path / "ag/train/sora/1_fake/v1.mp4", 33)
    _video(tmp_path / "ag/1_fake/v2.mp4", 34)
    assert ingest(tmp_path, "aigvdet", "ag", "ag").code == 0
    assert manifest(tmp_path, "ag").generator.to_dict() == {"ag-1_fake_v2": "ag", "ag-train_sora_1_fake_v1": "sora"}
