"""`brokenvideos detect-robustness --op OP --level L`: He et al. Table II's detectors, trained on clean
videos, on the lossy copies of their test videos (section V-D).

The frozen parts run again on the copies (the encoder features and frame-prediction errors are
what a lossy operation changes), then every trained model of each ``robustness.detectors`` run is
scored as `detect-evaluate` scores clean videos, into the same contract:
``<out>/eval/<name>/<train>/<test>/metrics.json``. ``<out>/metrics.json`` (written last) holds the
mean clip accuracy per detector, Table II's cell.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from brokenvideos.config import load_config
from brokenvideos.detect.cache import prediction_errors
from brokenvideos.detect.feature_store import build_store, index_path
from brokenvideos.detect.evaluate_step import evaluate_detector
from brokenvideos.detect.settings import detect_settings
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.paths import ResultPaths, backbone_slug, op_level
from brokenvideos.threads import add_threads_argument, set_torch_threads

log = logging.getLogger(__name__)


def degraded_test_split(detect_splits, degraded_videos):
    """The detection split's test rows, each pointing at its lossy copy."""
    table = read_table(detect_splits, kind="splits")
    test = table[table.split == "test"].drop(columns="path")
    copies = read_table(degraded_videos, kind="videos")[["video_id", "path"]]
    missing = sorted(set(test.video_id) - set(copies.video_id))
    if missing:
        raise InputError(degraded_videos, f"no lossy copy of test video {missing[0]} ({len(missing)} missing)")
    return test.merge(copies, on="video_id").sort_values("video_id").reset_index(drop=True)


def detect_robustness(cfg: dict, op: str, level: int, predictor, detect_splits=None) -> dict:
    settings = detect_settings(cfg)
    paths = ResultPaths(cfg["results"])
    name = op_level(op, level)
    unknown = [d for d in cfg["robustness"]["detectors"] if d not in settings["detectors"]]
    if unknown:
        raise BrokenVideosError(f"config: robustness.detectors: {unknown[0]!r} is not a run of detect.detectors")
    out = paths.robustness_detect_dir(name)
    test = degraded_test_split(detect_splits or paths.detect_splits, paths.degraded_videos_table(name))
    splits = out / "splits.parquet"
    write_table(test, splits, kind="splits")
    rows = test.to_dict("records")
    store = paths.feature_store(backbone_slug(settings["encoder"]), root=out / "features")
    features, errors = index_path(store), out / "errors.parquet"
    build_store(rows, settings["encoder"], settings["encoder_input_size"], store)
    prediction_errors(rows, predictor, settings["clip_len"], settings["stride"], errors)
    cells, decoded = {}, {}  # the lossy copies are decoded once for every detector
    for det in cfg["robustness"]["detectors"]:
        results = evaluate_detector(cfg, det, paths.detect_models(det), splits, out / "eval" / det, features, errors,
                                    decoded)
        cells[det] = float(np.mean([m["accuracy_clip"] for m in results.values()]))
        log.info("%s under %s: mean clip accuracy %.4f over %d (train, test) pairs", det, name, cells[det], len(results))
    summary = {"op": op, "level": level, "videos": len(test), "accuracy_clip": cells}
    write_json(out / "metrics.json", summary)
    return summary


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--op", required=True, choices=("abr", "crf", "bit-error"))
    p.add_argument("--level", required=True, type=int, choices=(1, 2, 3))
    p.add_argument("--predictor", required=True, help="the trained frame predictor (detect-predictor's model/)")
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    add_threads_argument(p)


def run(args) -> int:
    set_torch_threads(args.threads)
    cfg = load_config(args.config)
    summary = detect_robustness(cfg, args.op, args.level, Path(args.predictor), args.splits)
    print(" ".join(f"{k}={100 * v:.2f}" for k, v in summary["accuracy_clip"].items()))
    return 0
