"""`brokenvideos predict`: masks for every video of a split, in the masks layout.

``--weights DIR`` runs a trained (or initial) localizer; ``--baseline NAME`` a training-free one.
Output: ``<out>/<video_id>/<frame>.png`` (id 1 = artifact), ``<out>/predictions.parquet``
(``video_id, score, label_pred, mask_dir``: a localizer is also a detector — its score is the
highest artifact probability in the video).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from brokenvideos.config import load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import write_json
from brokenvideos.io.masks import read_video_masks, write_video_masks
from brokenvideos.io.tables import write_table
from brokenvideos.io.video import read_video
from brokenvideos.models.baselines import BASELINES
from brokenvideos.models.postprocess import POSTPROCESS_NAME, binarize, calibrate, calibration_rows, load_postprocess
from brokenvideos.paths import ResultPaths
from brokenvideos.threads import add_threads_argument, set_torch_threads
from brokenvideos.dataset.splits import split_videos

log = logging.getLogger(__name__)


def predict_probabilities(model, frames: np.ndarray, clip_len: int) -> np.ndarray:
    """Artifact probability per pixel: overlapping windows of ``clip_len`` frames (stride half a
    window), logits averaged where windows overlap; frames padded to a multiple of 8 pixels."""
    import torch
    import torch.nn.functional as F

    t, h, w, _ = frames.shape
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    ph, pw = (-h) % 8, (-w) % 8
    x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    clip_len = min(clip_len, t)
    starts = list(range(0, t - clip_len + 1, max(1, clip_len // 2)))
    if starts[-1] != t - clip_len:
        starts.append(t - clip_len)
    logits = torch.zeros(t, h, w)
    hits = torch.zeros(t, 1, 1)
    with torch.no_grad():
        for s in starts:
            out = model(x[s:s + clip_len][None])[0, :, :h, :w]
            logits[s:s + clip_len] += out
            hits[s:s + clip_len] += 1
    return torch.sigmoid(logits / hits).numpy()


def baseline_operating_point(name: str, paths: ResultPaths, seed: int) -> dict:
    """A training-free baseline's operating point, chosen as a localizer's is (the same train-split
    sample and objective); its masks are not probabilities, so only the minimum area is searched."""
    rows = split_videos(paths.videos_table, paths.splits_table, "train").to_dict("records")
    if not rows:
        raise BrokenVideosError(f"{paths.splits_table}: no broken or normal videos in the train split to calibrate on")
    samples = []
    for row in calibration_rows(rows, seed):
        frames = read_video(row["path"])
        target = (read_video_masks(row["mask_dir"], len(frames), frames.shape[1:3]) > 0).astype(np.uint8)
        samples.append((row["label"], target, BASELINES[name](frames).astype(np.float32)))
    return calibrate(samples, thresholds=(0.5,))


def predict_split(cfg: dict, out_dir, split: str, weights=None, baseline=None, videos_path=None) -> pd.DataFrame:
    """Masks for ``split``; a localizer's clip length and operating point come from its directory.
    ``videos_path``: another videos table over the same ids (e.g. lossy copies) instead of the dataset's."""
    if (weights is None) == (baseline is None):
        raise BrokenVideosError("predict: give exactly one of --weights and --baseline")
    paths = ResultPaths(cfg["results"])
    rows = split_videos(videos_path or paths.videos_table, paths.splits_table, split)
    if rows.empty:
        raise BrokenVideosError(f"{paths.splits_table}: no broken or normal videos in split {split!r}")
    model = None
    if weights is not None:
        import torch

        from brokenvideos.models import load_inference_settings, load_pretrained

        model = load_pretrained(weights).eval()
        clip_len = load_inference_settings(weights)["clip_len"]
        post = load_postprocess(weights)
        log.info("%s: %d-frame windows, operating point %s", weights, clip_len, post)
    elif baseline not in BASELINES:
        raise BrokenVideosError(f"predict: unknown baseline {baseline!r}; known: {sorted(BASELINES)}")
    else:
        post = baseline_operating_point(baseline, paths, cfg["seed"])
        log.info("%s: minimum area chosen on the train split: %s", baseline, post)
    out_dir = Path(out_dir)
    records = []
    for row in tqdm(rows.to_dict("records"), desc=f"predict {weights or baseline}", unit="video"):
        frames = read_video(row["path"])
        if model is not None:
            prob = predict_probabilities(model, frames, clip_len)
            masks, score = binarize(prob, post["threshold"], post["min_area"]), float(prob.max())
        else:
            masks = binarize(BASELINES[baseline](frames).astype(np.float32), 0.5, post["min_area"])
            score = float(masks.mean())
        write_video_masks(out_dir / row["video_id"], masks, {1: "artifact"} if masks.any() else {})
        records.append({"video_id": row["video_id"], "score": score, "label_pred": "broken" if masks.any() else "normal",
                        "mask_dir": str(out_dir / row["video_id"])})
    df = pd.DataFrame(records)
    if baseline is not None:
        write_json(out_dir / POSTPROCESS_NAME, post)  # the record of how its masks were made
    write_table(df, out_dir / "predictions.parquet", kind="detections")
    log.info("predicted %d videos of split %s into %s", len(df), split, out_dir)
    return df


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--out-dir", required=True, help="results/predictions/<model>/<checkpoint>")
    p.add_argument("--split", default="val")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", help="a save_pretrained directory (e.g. results/train/st_unet/final)")
    g.add_argument("--baseline", choices=sorted(BASELINES))
    add_threads_argument(p)


def run(args) -> int:
    set_torch_threads(args.threads)
    cfg = load_config(args.config)
    predict_split(cfg, args.out_dir, args.split, args.weights, args.baseline)
    return 0
