"""Scoring clips with a detector: P(generated) per clip, in batches, caches used when they fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from brokenvideos.detect.cache import check_compatible, to_tensor
from brokenvideos.detect.clips import ClipSet
from brokenvideos.detect.data import clip_starts


@torch.no_grad()
def score_clipset(model, clips: ClipSet, batch_size: int = 32) -> pd.DataFrame:
    model.eval()
    if model.SCORES_FRAMES:  # video by video, so that each frame is scored once
        flat = np.zeros(len(clips))
        by_video: dict[str, list[int]] = {}
        for i, (vid, _, _) in enumerate(clips.items):
            by_video.setdefault(vid, []).append(i)
        for vid, idx in by_video.items():
            starts = [clips.items[i][1] for i in idx]
            flat[idx] = model.score_video(clips.video_tensor(vid), starts, batch_size).numpy()
    else:
        scores = []
        for i in range(0, len(clips), batch_size):
            x, _ = clips.batch(range(i, min(i + batch_size, len(clips))))
            scores.append(model.predict_proba(x).numpy())
        flat = np.concatenate(scores) if scores else np.zeros(0)
    return pd.DataFrame({"video_id": [v for v, _, _ in clips.items], "clip": [s for _, s, _ in clips.items],
                         "score": flat.astype(float), "label": [y for _, _, y in clips.items]})


def clipset_for(model, rows, settings: dict, features=None, feature_meta=None, errors=None, error_meta=None,
                crop=None, decoded: dict | None = None) -> ClipSet:
    """The evaluation clips of ``rows`` for ``model``, with the caches it can use. ``errors`` may be
    a callable that reads the error maps, so that they are read only for a model that uses them."""
    use_feats, use_errs = check_compatible(model, feature_meta, errors and error_meta)
    if use_errs and callable(errors):
        errors = errors()
    return ClipSet(rows, model.clip_len, settings["stride"], crop, 0, features if use_feats else None,
                   errors if use_errs else None, random_crop=False, decoded=decoded)


@torch.no_grad()
def score_frames(model, frames: np.ndarray, stride: int, batch_size: int = 16) -> list[tuple[int, float]]:
    """Whole frames of one video -> [(clip start, P(generated))]."""
    model.eval()
    x = to_tensor(frames)
    starts = clip_starts(len(x), model.clip_len, stride)
    return list(zip(starts, model.score_video(x, starts, batch_size).tolist()))
