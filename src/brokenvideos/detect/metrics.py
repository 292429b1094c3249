"""Detection metrics, with the threshold always stated (He et al. V-B: accuracy at 0.5).

score = P(generated), label 1 = generated; a clip is called generated when score >= threshold.
A video's score is the mean of its clips' scores. AUC is the Mann-Whitney statistic with tied
scores counted as half; AP is the step-wise sum Σ (R_n - R_{n-1}) P_n over distinct thresholds —
both as scikit-learn defines them (tests compare on random scores with ties).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

THRESHOLD = 0.5


def accuracy(labels, scores, threshold: float = THRESHOLD) -> float:
    labels, scores = np.asarray(labels), np.asarray(scores)
    return float(np.mean((scores >= threshold).astype(int) == labels)) if len(labels) else math.nan


def roc_auc(labels, scores) -> float:
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, float)
    n_pos, n_neg = int(labels.sum()), int((1 - labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks: a tie counts as half a correct ordering
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(labels, scores) -> float:
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, float)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision, recall = tp / (tp + fp), tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1(labels, predicted, positive: int) -> float:
    labels, predicted = np.asarray(labels).astype(int), np.asarray(predicted).astype(int)
    tp = int(np.sum((predicted == positive) & (labels == positive)))
    fp = int(np.sum((predicted == positive) & (labels != positive)))
    fn = int(np.sum((predicted != positive) & (labels == positive)))
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0


def video_scores(detections: pd.DataFrame) -> pd.DataFrame:
    return detections.groupby("video_id", sort=True).agg(score=("score", "mean"), label=("label", "first")).reset_index()


def detection_metrics(detections: pd.DataFrame, threshold: float = THRESHOLD) -> dict:
    """The metrics.json contract from a detections table (video_id, clip, score, label)."""
    y, s = detections.label.to_numpy(int), detections.score.to_numpy(float)
    videos = video_scores(detections)
    pred = (s >= threshold).astype(int)

    def clean(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    return {
        "threshold": threshold,
        "accuracy_clip": clean(accuracy(y, s, threshold)),
        "accuracy_video": clean(accuracy(videos.label, videos.score, threshold)),
        "auc": clean(roc_auc(y, s)),
        "ap": clean(average_precision(y, s)),
        "f1_real": f1(y, pred, 0),
        "f1_fake": f1(y, pred, 1),
        "num_clips": int(len(y)),
        "num_videos": int(len(videos)),
        "num_generated_clips": int(y.sum()),
    }
