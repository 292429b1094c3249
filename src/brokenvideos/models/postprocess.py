"""Probabilities → masks, and choosing the operating point.

Under the mevis protocol every frame counts and a frame with an empty ground truth scores 0 for a
single stray pixel, so the threshold and a minimum component area matter as much as the model.
They are chosen on the *train* split after training (never on the evaluation split) and saved
beside the weights as ``postprocess.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

POSTPROCESS_NAME = "postprocess.json"
DEFAULT = {"threshold": 0.5, "min_area": 0}
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
MIN_AREAS = (0, 8, 16, 32, 64, 128, 256)
CALIBRATION_VIDEOS = 48  # a seeded sample of the train split: enough to rank 77 operating points


def calibration_rows(rows: list[dict], seed: int, max_videos: int = CALIBRATION_VIDEOS) -> list[dict]:
    """The train-split videos every Table 2 row (before, after, baselines) is calibrated on."""
    pick = np.random.default_rng([seed, 7]).permutation(len(rows))[:max_videos]
    return [rows[i] for i in sorted(pick)]


def binarize(prob: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """T×H×W probabilities → uint8 0/1 masks without components smaller than ``min_area`` pixels."""
    masks = (prob > threshold).astype(np.uint8)
    if min_area <= 0:
        return masks
    for t, frame in enumerate(masks):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(frame, connectivity=8)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_area) + 1
        if len(small):
            frame[np.isin(labels, small)] = 0
    return masks


def calibrate(samples: list[tuple[str, np.ndarray, np.ndarray]], thresholds=THRESHOLDS) -> dict:
    """Grid-search the operating point maximising the mean of broken and normal J&F.

    ``samples`` are (label, binary target T×H×W, probabilities T×H×W). Balanced across labels so
    that neither "predict nothing" nor "predict everything" wins. A method that outputs masks, not
    probabilities, searches the minimum area alone (``thresholds=(0.5,)``).
    """
    from brokenvideos.metrics.jf import evaluate_video

    best = None
    for threshold in thresholds:
        for min_area in MIN_AREAS:
            by_label: dict[str, list[float]] = {}
            for label, target, prob in samples:
                jf = evaluate_video(target, binarize(prob, threshold, min_area))[0]["JF"]
                by_label.setdefault(label, []).append(jf)
            score = float(np.mean([np.mean(v) for v in by_label.values()]))
            if best is None or score > best["train_jf"] + 1e-12:
                best = {"threshold": threshold, "min_area": min_area, "train_jf": round(score, 6),
                        "train_jf_by_label": {k: round(float(np.mean(v)), 6) for k, v in by_label.items()}}
    return best


def load_postprocess(weights_dir) -> dict:
    path = Path(weights_dir) / POSTPROCESS_NAME
    return {**DEFAULT, **json.loads(path.read_text())} if path.exists() else dict(DEFAULT)
