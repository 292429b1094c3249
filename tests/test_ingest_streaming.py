"""ingest in two passes: every item checked (no mask volume kept) before the first write, then
written video by video; --on-error skip ingests the good items and lists the bad ones."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli

from brokenvideos.dataset import ingest as ingest_step
from brokenvideos.io.masks import encode_mask, write_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import write_video

T, H, W = 4, 24, 32
NAMES = [f"clip_{i}" for i in range(8)]


@pytest.fixture
def three_bad(tmp_path):
    """8 videos with masks; exactly 3 bad files: an empty mp4, a text file named .mp4, a mask
    frame of the wrong size."""
    root, masks = tmp_path / "data/set", tmp_path / "data/masks"
    for i, name in enumerate(NAMES):
        root.mkdir(parents=True, exist_ok=True)
        write_video(root / f"{name}.mp4", np.random.default_rng(i).integers(0, 256, (T, H, W, 3), dtype=np.uint8), fps=5)
        vol = np.zeros((T, H, W), np.uint8)
        vol[:, i:i + 4, i:i + 4] = 1
        write_video_masks(masks / name, vol, {1: "motion_anomaly"})
    (root / "clip_2.mp4").write_bytes(b"")
    (root / "clip_4.mp4").write_text("not a video\n" * 50)
    (masks / "clip_6/00002.png").write_bytes(encode_mask(np.zeros((H // 2, W), np.uint8)))
    return tmp_path


def args(on_error):
    return ["ingest", "--root", "data/set", "--name", "set", "--out", "results/ingest/set.parquet",
            "--masks-dir", "data/masks", "--on-error", on_error]


def test_skip_writes_the_good_items_and_exactly_the_three_rejects(three_bad):
    result = run_cli(args("skip"), cwd=three_bad)
    assert result.code == 2
    assert result.error == ("error: results/ingest/set.parquet: 3 of 8 videos rejected, "
                            "listed in results/ingest/set.rejects.parquet")
    rejects = read_table(three_bad / "results/ingest/set.rejects.parquet")
    assert list(rejects.columns) == ["path", "reason"]
    assert rejects.path.tolist() == ["data/set/clip_2.mp4", "data/set/clip_4.mp4", "data/masks/clip_6/00002.png"]
    assert rejects.reason[0] == "video file is empty (0 bytes)"
    assert rejects.reason[1].startswith("cannot decode video")
    assert rejects.reason[2] == f"mask is {W}x{H // 2}, video is {W}x{H}"
    for path in rejects.path:  # each reject is logged
        assert f"rejected {path}: " in result.stderr
    df = read_table(three_bad / "results/ingest/set.parquet", kind="videos")
    assert df.video_id.tolist() == ["set-clip_0", "set-clip_1", "set-clip_3", "set-clip_5", "set-clip_7"]
    assert (df.label == "broken").all()
    written = sorted(p.name for p in (three_bad / "results/masks").iterdir())
    assert written == df.video_id.tolist()


def test_stop_names_the_first_bad_file_and_writes_nothing(three_bad):
    result = run_cli(args("stop"), cwd=three_bad)
    assert (result.code, result.error) == (2, "error: data/set/clip_2.mp4: video file is empty (0 bytes)")
    assert not (three_bad / "results").exists()


def test_clean_run_writes_an_empty_rejects_table(three_bad):
    for name in ("clip_2", "clip_4", "clip_6"):
        (three_bad / f"data/set/{name}.mp4").unlink()
    assert run_cli(args("skip"), cwd=three_bad).code == 0
    assert len(read_table(three_bad / "results/ingest/set.parquet")) == 5
    assert len(read_table(three_bad / "results/ingest/set.rejects.parquet")) == 0


def test_pass_one_keeps_no_volume(three_bad, monkeypatch):
    """Every loaded volume is released before the next item is checked, and pass 2 loads each
    item's masks once more, just before writing them."""
    import weakref

    for name in ("clip_2", "clip_4", "clip_6"):
        (three_bad / f"data/set/{name}.mp4").unlink()
    alive, loads = [], []
    real_write = ingest_step.write_video_masks

    def load_masks(item, info, _real=ingest_step._load_masks):
        vol, instances = _real(item, info)
        assert all(ref() is None for ref in alive), "an earlier mask volume is still referenced"
        alive.append(weakref.ref(vol))
        loads.append(item.key)
        return vol, instances

    writes = []
    monkeypatch.setattr(ingest_step, "_load_masks", load_masks)
    monkeypatch.setattr(ingest_step, "write_video_masks", lambda d, *a, **k: (writes.append(d.name), real_write(d, *a, **k)))
    ingest_step.ingest({"name": "set", "root": three_bad / "data/set", "masks_dir": three_bad / "data/masks"},
                       three_bad / "results/ingest/set.parquet", three_bad / "results")
    keys = ["clip_0", "clip_1", "clip_3", "clip_5", "clip_7"]
    assert loads == keys + keys  # pass 1, then pass 2
    assert writes == [f"set-{k}" for k in keys]


def test_skip_with_every_item_bad_writes_only_the_rejects(tmp_path):
    (tmp_path / "data/set").mkdir(parents=True)
    for name in ("a", "b"):
        (tmp_path / f"data/set/{name}.mp4").write_bytes(b"")
    result = run_cli(["ingest", "--root", "data/set", "--name", "set", "--out", "results/ingest/set.parquet",
                      "--on-error", "skip"], cwd=tmp_path)
    assert (result.code, result.error) == (2, "error: results/ingest/set.parquet: all 2 videos rejected, "
                                              "listed in results/ingest/set.rejects.parquet")
    assert read_table(tmp_path / "results/ingest/set.rejects.parquet").path.tolist() == ["data/set/a.mp4",
                                                                                         "data/set/b.mp4"]
    assert sorted(p.name for p in (tmp_path / "results/ingest").iterdir()) == ["set.rejects.parquet"]
