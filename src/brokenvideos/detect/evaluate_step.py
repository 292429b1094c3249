"""`brokenvideos detect-evaluate --name NAME`: every trained model of a detector on every
generator's test set (its generated test videos + the real test videos).

The contract, per (detector, training set, test set): ``<out>/<train>/<test>/detections.parquet``
(one row per clip: ``video_id, clip, score, label``; score = P(generated), label 1 = generated)
and ``metrics.json`` (accuracy_clip, accuracy_video, auc, ap, f1_real, f1_fake, threshold).
Every table is built from these files.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.detect import load_detector
from brokenvideos.detect.cache import read_prediction_errors, sidecar
from brokenvideos.detect.feature_store import is_complete, read_store
from brokenvideos.detect.data import generated_generators
from brokenvideos.detect.metrics import THRESHOLD, detection_metrics
from brokenvideos.detect.scoring import clipset_for, score_clipset
from brokenvideos.detect.settings import detect_settings
from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths
from brokenvideos.threads import add_threads_argument, set_torch_threads

log = logging.getLogger(__name__)
DETECTION_COLUMNS = ["video_id", "clip", "score", "label"]


def write_detections(df: pd.DataFrame, path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = df.sort_values(["video_id", "clip"], kind="stable").reset_index(drop=True)
    df = df[DETECTION_COLUMNS + [c for c in df.columns if c not in DETECTION_COLUMNS]]
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None), tmp,
                       compression="zstd")


def read_detections(path) -> pd.DataFrame:
    df = read_table(path)
    missing = [c for c in DETECTION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"not a detections table: missing columns {missing}")
    return df


def evaluate_detector(cfg: dict, name: str, models_dir, splits_path, out_dir, features=None, errors=None,
                      decoded: dict | None = None) -> dict:
    """``decoded``: video_id -> frames, shared with other calls on the same videos (robustness)."""
    settings = detect_settings(cfg)
    table = read_table(splits_path, kind="splits")
    test = table[table.split == "test"]
    gens = generated_generators(table)
    feats = read_store(features) if features and is_complete(features) else (None, None)
    error_meta = json.loads(sidecar(errors).read_text()) if errors and sidecar(errors).exists() else None
    error_maps = functools.cache(lambda: read_prediction_errors(errors)[1])  # only if a model uses them
    decoded = {} if decoded is None else decoded  # every trained model scores the same test videos
    results, t0, n_clips = {}, time.perf_counter(), 0
    for trainset in gens:
        model = load_detector(Path(models_dir) / trainset)
        clips = clipset_for(model, test.to_dict("records"), settings, feats[1], feats[0], error_maps, error_meta,
                            crop=settings["eval_crop"], decoded=decoded)
        scored = score_clipset(model, clips)  # every test video once; test sets share the real ones
        n_clips += len(scored)
        scored = scored.merge(test[["video_id", "generator"]], on="video_id")
        for testset in gens:
            det = scored[(scored.generator == testset) | (scored.label == 0)].drop(columns="generator")
            d = Path(out_dir) / trainset / testset
            write_detections(det, d / "detections.parquet")
            metrics = detection_metrics(det, THRESHOLD) | {"detector": name, "train": trainset, "test": testset}
            write_json(d / "metrics.json", metrics)
            results[(trainset, testset)] = metrics
            log.info("%s trained on %s, tested on %s: acc %.4f auc %s", name, trainset, testset,
                     metrics["accuracy_clip"], metrics["auc"])
    seconds = time.perf_counter() - t0
    write_json(Path(out_dir) / "timing.json", {"seconds": seconds, "clips_scored": n_clips,
                                               "clips_per_s": n_clips / max(seconds, 1e-9)})
    return results


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--models", required=True, help="detect-train output: <models>/<trainset>/")
    p.add_argument("--splits")
    p.add_argument("--features")
    p.add_argument("--errors")
    p.add_argument("--out-dir", required=True)
    add_threads_argument(p)


def run(args) -> int:
    set_torch_threads(args.threads)
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    results = evaluate_detector(cfg, args.name, args.models, args.splits or paths.detect_splits, args.out_dir,
                                args.features, args.errors)
    print(json.dumps({f"{a}->{b}": m["accuracy_clip"] for (a, b), m in results.items()}, indent=1))
    return 0
