"""Detection data: which videos are real or generated, splits grouped by prompt, and clips.

Real videos are those labelled ``real`` (the camera family and ingested real data); generated ones
are every generator's videos, broken and normal alike (label 1). A clip is T adjacent frames
(T = 7, He et al. V-B) starting every ``stride`` frames. Splits deal whole prompts to train / val /
test (no scene in two splits), stratified by label mix and generator; ``paper`` is 8:1:1.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from brokenvideos.dataset.splits import split_by_ratios
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video

PAPER_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
REAL = "real"


def split_ratios(split_cfg: dict) -> dict[str, float]:
    if split_cfg.get("by", "ratios") == "paper":
        return dict(PAPER_RATIOS)
    return {k: float(split_cfg.get(k, 0)) for k in ("train", "val", "test")}


def detection_table(videos_path) -> pd.DataFrame:
    videos = read_table(videos_path, kind="videos")
    if "status" in videos:
        videos = videos[videos.status.fillna("ok") == "ok"]
    df = videos[["video_id", "generator", "prompt_id", "path", "label", "num_frames", "width", "height"]].copy()
    df["mask_dir"] = videos["mask_dir"] if "mask_dir" in videos else ""
    df["instance_subcategories"] = videos["instance_subcategories"] if "instance_subcategories" in videos else "{}"
    df["is_generated"] = (df.label != REAL).astype(int)
    return df.sort_values("video_id").reset_index(drop=True)


def make_detection_splits(table: pd.DataFrame, split_cfg: dict, seed: int) -> pd.DataFrame:
    if not (table.is_generated == 0).any():
        raise BrokenVideosError("detection needs real videos (label 'real'); the dataset has none")
    if not (table.is_generated == 1).any():
        raise BrokenVideosError("detection needs generated videos; the dataset has none")
    splits = split_by_ratios(table, split_ratios(split_cfg), seed)
    out = table.merge(splits, on="video_id")
    return out.sort_values("video_id").reset_index(drop=True)


def generated_generators(table: pd.DataFrame) -> list[str]:
    return sorted(table.loc[table.is_generated == 1, "generator"].unique())


def subset(table: pd.DataFrame, split: str, generator: str) -> pd.DataFrame:
    """One generator's generated videos plus every real video, in ``split``."""
    keep = (table.split == split) & ((table.generator == generator) | (table.is_generated == 0))
    return table[keep].sort_values("video_id").reset_index(drop=True)


def clip_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    if num_frames < clip_len:
        return []
    return list(range(0, num_frames - clip_len + 1, stride))


def check_clip_length(path, frames: np.ndarray, clip_len: int) -> np.ndarray:
    """``frames`` if they serve at least one clip; else one line naming the file."""
    if len(frames) < clip_len:
        raise InputError(path, f"video has {len(frames)} frames, fewer than one clip of {clip_len}")
    return frames


def load_frames(path, clip_len: int) -> np.ndarray:
    """Decode a video (T, H, W, 3) uint8; one line naming the file if it cannot serve one clip."""
    return check_clip_length(path, read_video(path), clip_len)


def parse_subcategories(value) -> dict[int, str]:
    if isinstance(value, dict):
        return {int(k): v for k, v in value.items()}
    try:
        return {int(k): v for k, v in json.loads(value or "{}").items()}
    except (TypeError, ValueError):
        return {}
