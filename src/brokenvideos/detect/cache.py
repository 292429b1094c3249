"""Caches of the detectors' frozen parts, computed once per run and shared by every detector.

- encoder features: the feature store (``detect.feature_store``), one shard per (video, backbone);
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
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from brokenvideos.detect.data import clip_starts, load_frames
from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.video import sha256_file
from brokenvideos.models.backbones import to_tensor  # the detectors import it from here too

log = logging.getLogger(__name__)


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


def _size(size):
    return [size, size] if isinstance(size, int) else (list(size) if size else None)


def check_compatible(model, feature_meta: dict | None, error_meta: dict | None) -> tuple[bool, bool]:
    """Which caches fit this detector: (features usable, errors usable)."""
    spec = model.encoder_spec()
    use_feats = bool(spec and feature_meta and feature_meta["encoder"] == spec["encoder"]
                     and feature_meta.get("feature", "frame") == "frame"
                     and _size(feature_meta.get("input_size")) == _size(spec["input_size"]))
    use_errs = False
    if error_meta and getattr(model, "use_local", False) and getattr(model, "predictor_digest", None):
        use_errs = error_meta["predictor_sha256"] == model.predictor_digest and error_meta["clip_len"] == model.clip_len
    return use_feats, use_errs

