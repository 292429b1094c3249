"""The feature store (detect.feature_store) and its backbones (models.frozen_encoders).

- features are bit-identical across two runs, with 1 or 2 local workers, and through Ray Data;
- a re-run encodes nothing, a run resumed after a crash encodes only what was missing, and a new
  revision of the weights replaces the old shards;
- SigLIP (frame features) and VideoMAE (one clip feature) from tiny random-weight transformers saves,
  under HF_HUB_OFFLINE=1, against the models' own processors and forward passes;
- an unreadable video is skipped with one line; a missing backbone fails before any video.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, write_config

from brokenvideos.detect import feature_store
from brokenvideos.detect.feature_store import build_store, read_store
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.tables import write_table
from brokenvideos.io.video import write_video
from brokenvideos.models import frozen_encoders


def _videos(tmp_path, n=3, frames=5, size=(32, 40)):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        path = tmp_path / "videos" / f"v{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, rng.integers(0, 255, (frames, *size, 3), dtype=np.uint8), fps=8)
        rows.append({"video_id": f"v{i}", "path": str(path), "num_frames": frames})
    return rows


@pytest.fixture()
def counted(monkeypatch):
    """Counts the videos the backbone encodes (in this process)."""
    calls = []
    real = frozen_encoders.FrameEncoder.encode_video

    def encode_video(self, frames, *a, **k):
        calls.append(len(frames))
        return real(self, frames, *a, **k)

    monkeypatch.setattr(frozen_encoders.FrameEncoder, "encode_video", encode_video)
    return calls


def _shard_bytes(store):
    return {p.name: p.read_bytes() for p in sorted((store / "videos").glob("*.npy"))}


def test_default_encoder_features_are_bit_identical_and_indexed(tmp_path):
    rows = _videos(tmp_path)
    a = build_store(rows, "efficientnet_lite0", None, tmp_path / "a")
    b = build_store(rows, "efficientnet_lite0", None, tmp_path / "b")
    assert a["dim"] == 1280 and a["frames"] == 15 and a["videos"] == 3 and a["feature"] == "frame"
    assert a["revision"] == b["revision"] and a["revision"].startswith("sha256:")
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    meta, feats = read_store(tmp_path / "a" / "index.parquet")
    assert sorted(feats) == ["v0", "v1", "v2"] and feats["v0"].shape == (5, 1280) and feats["v0"].dtype == np.float32
    assert meta["backbone"] == meta["encoder"] == "efficientnet_lite0"
    store = json.loads((tmp_path / "a" / "store.json").read_text())
    assert store == {k: meta[k] for k in feature_store.IDENTITY}


def test_a_rerun_encodes_nothing_and_a_resumed_run_only_what_is_missing(tmp_path, counted, monkeypatch):
    rows = _videos(tmp_path, n=4)
    store = tmp_path / "store"
    full = build_store(rows, "random:resnet_tiny", None, store)
    reference = _shard_bytes(store)
    assert len(counted) == 4 and full["encoded"] == 4
    counted.clear()
    again = build_store(rows, "random:resnet_tiny", None, store)
    assert counted == [] and again["encoded"] == 0 and again["reused"] == 4
    # a crash on the third video: the first two shards stay, no index claims a complete store
    for p in (store / "videos").glob("*.npy"):
        p.unlink()
    (store / "index.json").unlink()
    real = frozen_encoders.FrameEncoder.encode_video
    state = {"n": 0}

    def crash_on_third(self, frames, *a, **k):
        state["n"] += 1
        if state["n"] == 3:
            raise KeyboardInterrupt
        return real(self, frames, *a, **k)

    monkeypatch.setattr(frozen_encoders.FrameEncoder, "encode_video", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_store(rows, "random:resnet_tiny", None, store)
    assert len(list((store / "videos").glob("*.npy"))) == 2 and not (store / "index.json").exists()
    assert not list((store / "videos").glob(".tmp-*"))
    (store / "videos" / ".tmp-v2.0123-abc.npy").write_bytes(b"half")  # as a SIGKILL mid-write leaves
    monkeypatch.setattr(frozen_encoders.FrameEncoder, "encode_video", real)
    resumed = build_store(rows, "random:resnet_tiny", None, store)
    assert resumed["encoded"] == 2 and resumed["reused"] == 2
    assert _shard_bytes(store) == reference and not list((store / "videos").glob(".tmp-*"))


def test_new_weights_at_the_same_path_replace_the_old_shards(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = _videos(tmp_path, n=2, size=(32, 32))
    store, spec = tmp_path / "store", str(_tiny_siglip(tmp_path / "siglip"))
    first = build_store(rows, spec, None, store)
    _tiny_siglip(tmp_path / "siglip", seed=1)  # the model at the path is replaced
    second = build_store(rows, spec, None, store)
    assert first["revision"] != second["revision"] and second["encoded"] == 2
    assert "shards are deleted" in caplog.text
    assert len(list((store / "videos").glob("*.npy"))) == 2
    third = build_store(rows, spec, None, store)
    assert third["revision"] == second["revision"] and third["encoded"] == 0


def test_a_changed_video_is_encoded_again(tmp_path, counted):
    rows = _videos(tmp_path, n=2)
    store = tmp_path / "store"
    build_store(rows, "random:resnet_tiny", None, store)
    write_video(rows[1]["path"], np.zeros((5, 32, 40, 3), np.uint8), fps=8)  # new bytes, same id
    counted.clear()
    meta = build_store(rows, "random:resnet_tiny", None, store)
    assert counted == [5] and meta["reused"] == 1
    assert np.allclose(read_store(store)[1]["v1"], read_store(store)[1]["v1"][0])  # constant frames


def test_unreadable_video_is_skipped_with_one_line_and_the_others_kept(tmp_path, caplog):
    rows = _videos(tmp_path, n=3)
    open(rows[1]["path"], "wb").write(b"not an mp4")
    meta = build_store(rows, "random:resnet_tiny", None, tmp_path / "store")
    assert meta["videos"] == 2 and sorted(read_store(tmp_path / "store")[1]) == ["v0", "v2"]
    skipped = [r.message for r in caplog.records if "skipped" in r.message]
    assert len(skipped) == 1 and "v1.mp4" in skipped[0] and "\n" not in skipped[0]


def test_two_local_workers_write_the_same_bytes_as_one(tmp_path):
    """Each worker gets one of the two threads: compared with one worker on one thread (torch's
    convolutions round differently with another thread count: benchmarks/bench_features.py)."""
    rows = _videos(tmp_path, n=4)
    build_store(rows, "efficientnet_lite0", None, tmp_path / "one", workers=1, threads=1)
    meta = build_store(rows, "efficientnet_lite0", None, tmp_path / "two", workers=2, threads=2)
    assert meta["workers"] == 2 and meta["encoded"] == 4
    assert _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two")


@pytest.mark.slow
def test_ray_data_map_batches_writes_the_same_bytes(tmp_path):
    import ray

    rows = _videos(tmp_path, n=3)
    # one thread, as each actor has (1 CPU): not the process's current count, which other tests set
    build_store(rows, "efficientnet_lite0", None, tmp_path / "local", threads=1)
    try:
        meta = build_store(rows, "efficientnet_lite0", None, tmp_path / "ray",
                           ray_cfg={"num_workers": 2, "cpus_per_worker": 1, "batch_size": 1})
    finally:
        ray.shutdown()
    assert meta["workers"] == "ray" and meta["encoded"] == 3
    assert _shard_bytes(tmp_path / "local") == _shard_bytes(tmp_path / "ray")


def _tiny_siglip(path, seed=0):
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(seed)
    cfg = SiglipConfig(vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 24, "num_hidden_layers": 2,
                                      "num_attention_heads": 2, "intermediate_size": 48},
                       text_config={"vocab_size": 64, "hidden_size": 24, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "intermediate_size": 48, "max_position_embeddings": 16})
    SiglipModel(cfg).save_pretrained(path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def _tiny_videomae(path):
    from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

    torch.manual_seed(0)
    cfg = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=24,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=48)
    VideoMAEModel(cfg).save_pretrained(path)
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_siglip_gives_its_image_towers_features_per_frame(tmp_path, monkeypatch):
    from transformers import SiglipImageProcessor, SiglipModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_dir = _tiny_siglip(tmp_path / "siglip")
    rows = _videos(tmp_path, n=2, size=(32, 32))  # the model's size: the processor only rescales
    meta = build_store(rows, f"hf:{model_dir}", None, tmp_path / "store")
    assert meta["feature"] == "frame" and meta["dim"] == 24
    feats = read_store(tmp_path / "store")[1]
    from brokenvideos.io.video import read_video

    frames = read_video(rows[0]["path"])
    model, proc = SiglipModel.from_pretrained(model_dir).eval(), SiglipImageProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        ref = model.get_image_features(**proc(list(frames), return_tensors="pt"))
    ref = ref if torch.is_tensor(ref) else ref.pooler_output
    np.testing.assert_allclose(feats["v0"], ref.numpy(), atol=1e-4)


def test_videomae_gives_one_clip_feature_from_its_processor(tmp_path, monkeypatch):
    from transformers import VideoMAEImageProcessor, VideoMAEModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_dir = _tiny_videomae(tmp_path / "videomae")
    rows = _videos(tmp_path, n=2, frames=7, size=(36, 48))
    meta = build_store(rows, str(model_dir), None, tmp_path / "store")  # a directory spec works too
    assert meta["feature"] == "clip" and meta["dim"] == 24 and meta["frames"] == 14
    feats = read_store(tmp_path / "store")[1]
    assert feats["v0"].shape == (1, 24)
    from brokenvideos.io.video import read_video

    enc = frozen_encoders.frozen_encoder(str(model_dir))
    assert enc.sample(7).tolist() == [0, 2, 4, 6] and enc.sample(3).tolist() == [0, 1, 1, 2]
    frames = read_video(rows[0]["path"])
    model, proc = VideoMAEModel.from_pretrained(model_dir).eval(), VideoMAEImageProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        hidden = model(**proc([frames[i] for i in (0, 2, 4, 6)], return_tensors="pt")).last_hidden_state
    np.testing.assert_allclose(feats["v0"], hidden.mean(dim=1).numpy(), atol=1e-5)


def test_missing_backbone_fails_before_any_video(tmp_path, counted, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = _videos(tmp_path, n=1)
    with pytest.raises(BrokenVideosError) as err:
        build_store(rows, "hf:google/siglip-base-patch16-224", None, tmp_path / "store")
    assert "hf:google/siglip-base-patch16-224" in str(err.value) and "\n" not in str(err.value)
    assert counted == [] and not (tmp_path / "store").exists()


def test_the_command_fills_the_configured_store_and_says_what_it_did(tmp_path):
    rows = _videos(tmp_path, n=2)
    import pandas as pd

    table = pd.DataFrame([{**r, "split": "train", "generator": "g", "is_generated": 1, "prompt_id": "p"} for r in rows])
    write_table(table, tmp_path / "splits.parquet", kind="splits")
    cfg = write_config(tmp_path, detect={"encoder": "random:resnet_tiny"})
    args = ["detect-features", "--config", cfg, "--splits", tmp_path / "splits.parquet", "--backbone", "default"]
    first = run_cli(args, cwd=tmp_path)
    assert first.code == 0, first.stderr
    assert "2 encoded, 0 reused" in first.stderr
    again = run_cli(args, cwd=tmp_path)
    assert "0 encoded, 2 reused" in again.stderr and "nothing to encode" in again.stderr


def test_the_dag_has_one_store_job_per_backbone_shared_with_the_detectors(tmp_path):
    from conftest import job_counts, run_snakemake

    write_config(tmp_path, detect={"vidaid": {"backbones": ["efficientnet_lite0", "hf:org/some-videomae"]}})
    proc = run_snakemake(tmp_path, "-n", "detect_all")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stdout)["detect_backbone_features"] == 2  # the detectors' encoder is VID-AID's first
    assert "--backbone hf:org/some-videomae" in proc.stdout or "hf-org-some-videomae" in proc.stdout
