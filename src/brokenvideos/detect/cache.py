"""Caches of the detectors' frozen parts, computed once per run and shared by every detector.

- encoder features: one row per (video, frame): the frozen image encoder's embedding of the full
  frame (``feature``, float32 list), with the encoder spec in a JSON sidecar;
- prediction errors: one row per (video, clip): the frozen frame predictor's time-averaged error
  map R̂ of the clip (``error``, float16 bytes of 3×H×W), with the predictor's weights hash.

A detector only uses a cache made with its own frozen part (checked by spec / hash); otherwise it
computes the part itself. Videos that cannot be read are skipped with one line naming them.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from brokenvideos.detect.data import clip_starts, load_frames
from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.video import sha256_file

log = logging.getLogger(__name__)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def sidecar(path) -> Path:
    return Path(path).with_suffix(".json")


def _write_parquet(table: pa.Table, path) -> None:
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table.replace_schema_metadata(None), tmp, compression="zstd")


def _read_videos(rows, clip_len: int):
    for row in rows:
        try:
            yield row, load_frames(row["path"], clip_len)
        except InputError as exc:
            log.warning("skipped: %s", exc)


def encoder_features(rows, spec: str, input_size, out_path, batch_size: int = 32) -> dict:
    from brokenvideos.models.backbones import FrozenImageEncoder

    encoder = FrozenImageEncoder(spec, input_size)  # fails at once, before any video, if missing
    ids, frames_idx, feats, n_frames, t0 = [], [], [], 0, time.perf_counter()
    for row, frames in _read_videos(rows, 1):
        x = to_tensor(frames)
        out = torch.cat([encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        ids += [row["video_id"]] * len(x)
        frames_idx += list(range(len(x)))
        feats.append(out.numpy().astype(np.float32))
        n_frames += len(x)
    elapsed = time.perf_counter() - t0
    flat = np.concatenate(feats) if feats else np.zeros((0, encoder.dim), np.float32)
    return write_encoder_features(out_path, ids, frames_idx, flat, {
        "encoder": spec, "input_size": input_size, "frames": n_frames, "frames_per_s": n_frames / max(elapsed, 1e-9)})


def write_encoder_features(out_path, video_ids, frames, features: np.ndarray, meta: dict) -> dict:
    """The cache file (one row per video frame) and its sidecar; ``features`` is (rows, dim) float32."""
    dim = int(features.shape[1])
    table = pa.table({"video_id": list(video_ids), "frame": pa.array(frames, pa.int32()),
                      "feature": pa.FixedSizeListArray.from_arrays(pa.array(features.astype(np.float32).reshape(-1)), dim)})
    _write_parquet(table, out_path)
    meta = {**meta, "dim": dim}
    write_json(sidecar(out_path), meta)
    return meta


def read_encoder_features(path) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(path)
    if not path.exists() or not sidecar(path).exists():
        raise InputError(path, "feature cache is missing")
    meta = json.loads(sidecar(path).read_text())
    table = pq.read_table(path)
    ids = table.column("video_id").to_numpy(zero_copy_only=False)
    frames = table.column("frame").to_numpy()
    flat = table.column("feature").combine_chunks().flatten().to_numpy().reshape(len(ids), meta["dim"])
    out: dict[str, np.ndarray] = {}
    order = np.lexsort((frames, ids))
    ids, flat = ids[order], flat[order]
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[str(ids[a])] = flat[a:b]
    return meta, out


def predictor_digest(predictor_dir) -> str:
    return sha256_file(Path(predictor_dir) / "model.pt")[:16]


def prediction_errors(rows, predictor_dir, clip_len: int, stride: int, out_path) -> dict:
    from brokenvideos.detect.predictor import FramePredictor

    predictor = FramePredictor.from_pretrained(predictor_dir).eval()
    ids, starts, blobs, shapes, n_frames, t0 = [], [], [], [], 0, time.perf_counter()
    with torch.no_grad():
        for row, frames in _read_videos(rows, clip_len):
            x = to_tensor(frames)
            # every frame's error once (r_t needs f_{t-2}, f_{t-1}), then each clip's mean of its own
            r = predictor.errors(x[None])[0]  # (T-2, 3, H, W): r for frames 2..T-1
            n_frames += len(x)
            for s in clip_starts(len(x), clip_len, stride):
                mean = r[s:s + clip_len - 2].mean(dim=0)
                ids.append(row["video_id"])
                starts.append(s)
                blobs.append(mean.numpy().astype(np.float16).tobytes())
                shapes.append(list(mean.shape))
    elapsed = time.perf_counter() - t0
    table = pa.table({"video_id": ids, "start": pa.array(starts, pa.int32()), "shape": shapes,
                      "error": pa.array(blobs, pa.binary())})
    _write_parquet(table, out_path)
    meta = {"predictor": str(predictor_dir), "predictor_sha256": predictor_digest(predictor_dir),
            "clip_len": clip_len, "stride": stride, "frames": n_frames, "frames_per_s": n_frames / max(elapsed, 1e-9)}
    write_json(sidecar(out_path), meta)
    return meta


def read_prediction_errors(path) -> tuple[dict, dict[tuple[str, int], np.ndarray]]:
    path = Path(path)
    if not path.exists() or not sidecar(path).exists():
        raise InputError(path, "prediction-error cache is missing")
    meta = json.loads(sidecar(path).read_text())
    df = pq.read_table(path).to_pandas()
    out = {(v, int(s)): np.frombuffer(b, np.float16).reshape(shape)
           for v, s, shape, b in zip(df.video_id, df.start, df["shape"], df.error)}
    return meta, out


def check_compatible(model, feature_meta: dict | None, error_meta: dict | None) -> tuple[bool, bool]:
    """Which caches fit this detector: (features usable, errors usable)."""
    spec = model.encoder_spec()
    use_feats = bool(spec and feature_meta and feature_meta["encoder"] == spec["encoder"]
                     and feature_meta.get("input_size") == spec["input_size"])
    use_errs = False
    if error_meta and getattr(model, "use_local", False) and getattr(model, "predictor_digest", None):
        use_errs = error_meta["predictor_sha256"] == model.predictor_digest and error_meta["clip_len"] == model.clip_len
    return use_feats, use_errs

