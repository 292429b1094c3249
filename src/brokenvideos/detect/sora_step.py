"""`brokenvideos detect-sora --name NAME`: score a trained Sora-label classifier on the test
split's generated frames: ``frames.parquet`` (video_id, frame, 4 labels, 4 probabilities) and
``metrics.json`` (average multi-label accuracy, per-label accuracy and F1, threshold)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brokenvideos.config import load_config
from brokenvideos.detect.cache import check_compatible
from brokenvideos.detect.feature_store import is_complete, read_store
from brokenvideos.detect.sora import LABELS, ArtifactLabelClassifier, FrameLabelSet, multilabel_metrics
from brokenvideos.detect.train_step import sora_rows
from brokenvideos.io.atomic import write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_sora(model_dir, splits_path, out_dir, features=None) -> dict:
    model = ArtifactLabelClassifier.from_pretrained(model_dir)
    feats = read_store(features) if features and is_complete(features) else (None, None)
    use_feats, _ = check_compatible(model, feats[0], None)
    rows = sora_rows(read_table(splits_path, kind="splits"), "test")
    data = FrameLabelSet(rows, feats[1] if use_feats else None)
    probs, labels = [], []
    for i in range(0, len(data), 64):
        x, y = data.batch(range(i, min(i + 64, len(data))))
        probs.append(torch.sigmoid(model(x)).numpy())
        labels.append(y.numpy())
    probs, labels = np.concatenate(probs), np.concatenate(labels).astype(int)
    metrics = multilabel_metrics(labels, probs) | {"classifier": Path(model_dir).name,
                                                   "backbone": model.config["backbone"], "frozen": model.config["frozen"]}
    df = pd.DataFrame({"video_id": [v for v, _, _ in data.items], "frame": [t for _, t, _ in data.items]})
    for k, name in enumerate(LABELS):
        df[f"label_{name}"], df[f"p_{name}"] = labels[:, k], probs[:, k].astype(float)
    write_table(df, Path(out_dir) / "frames.parquet")
    write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--model", required=True, help="a trained classifier (save_pretrained directory)")
    p.add_argument("--splits")
    p.add_argument("--features")
    p.add_argument("--out-dir", required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    m = evaluate_sora(args.model, args.splits or paths.detect_splits, args.out_dir, args.features)
    print(json.dumps({"average_accuracy": m["average_accuracy"]}))
    return 0
