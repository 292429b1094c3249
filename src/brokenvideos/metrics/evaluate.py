"""`brokenvideos evaluate`: score one model's predictions on a split, per video and aggregated.

``normal_target`` decides what a normal video is scored against:
- ``empty``: its all-zero artifact mask; a prediction of "no artifact" scores J = F = 1.
- ``full``: BrokenVideos 4.1 labels normal videos' masks as fully "normal" and queries the model
  with a normal prompt; here the model's normal region is the complement of its artifact mask, and
  it is scored against the full frame.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from brokenvideos.config import load_config
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.tables import write_table
from brokenvideos.metrics.jf import VOID, evaluate_video, jf_per_frame
from brokenvideos.metrics.protocols import PROTOCOLS
from brokenvideos.paths import ResultPaths
from brokenvideos.prompts.taxonomy import category_of
from brokenvideos.dataset.splits import split_videos

log = logging.getLogger(__name__)
NORMAL_TARGETS = ("empty", "full")
GROUPS = {"broken": ["broken"], "normal": ["normal"], "all": ["broken", "normal"]}


def score_video(gt: np.ndarray, pred: np.ndarray, label: str, protocol: str, normal_target: str) -> list[dict]:
    if label != "broken" and normal_target == "full":
        gt, pred = np.ones_like(gt), (pred == 0).astype(np.uint8)
    return evaluate_video(gt, pred, protocol)


def frame_scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    """What the model does frame by frame (beyond the paper; the union of instances, void excluded):
    J&F on the frames whose ground truth has an artifact, and whether it fires (predicts any pixel)
    on each frame, against whether the frame has an artifact."""
    void = gt == VOID
    g, p = (gt > 0) & ~void, (pred > 0) & ~void
    has_gt, fires = g.reshape(len(g), -1).any(1), p.reshape(len(p), -1).any(1)
    j, f = jf_per_frame(g, p)
    return {"artifact_frames": int(has_gt.sum()),
            "JF_artifact": float(((j + f) / 2)[has_gt].mean()) if has_gt.any() else float("nan"),
            "frames_tp": int((fires & has_gt).sum()), "frames_fp": int((fires & ~has_gt).sum()),
            "frames_fn": int((~fires & has_gt).sum()), "frames_tn": int((~fires & ~has_gt).sum())}


def evaluate_split(cfg: dict, pred_dir, split: str, protocol: str, normal_target: str,
                   videos_path=None) -> pd.DataFrame:
    if protocol not in PROTOCOLS or normal_target not in NORMAL_TARGETS:
        raise BrokenVideosError(f"evaluate: protocol must be one of {list(PROTOCOLS)} and normal_target one of {NORMAL_TARGETS}")
    paths = ResultPaths(cfg["results"])
    rows = split_videos(videos_path or paths.videos_table, paths.splits_table, split)
    pred_dir = Path(pred_dir)
    out = []
    for row in tqdm(rows.to_dict("records"), desc=f"evaluate {pred_dir}", unit="video"):
        gt = read_video_masks(row["mask_dir"], row["num_frames"], (row["height"], row["width"]))
        pred_video = pred_dir / row["video_id"]
        if not pred_video.is_dir():
            raise InputError(pred_video, "prediction video is missing")
        pred = read_video_masks(pred_video, row["num_frames"], (row["height"], row["width"]))
        subcats = sorted(set(json.loads(row.get("instance_subcategories") or "{}").values()))
        frames = frame_scores(gt, pred)
        for r in score_video(gt, pred, row["label"], protocol, normal_target):
            out.append({"video": row["video_id"], **r, "label": row["label"], "generator": row["generator"],
                        "category": category_of(subcats[0]) if subcats else "normal",
                        "subcategory": subcats[0] if subcats else "normal", "prompt_id": row["prompt_id"],
                        **frames})
    return pd.DataFrame(out)


def summarize(per_video: pd.DataFrame) -> dict:
    """Table 2 groups: broken, normal and all videos; a mean over rows (videos under mevis)."""
    summary = {}
    for group, labels in GROUPS.items():
        d = per_video[per_video.label.isin(labels)]
        summary[group] = {k: (round(float(d[c].mean()), 6) if len(d) else None)
                          for k, c in (("J", "J"), ("F", "F"), ("J&F", "JF"))} | {"n": int(len(d))}
    return summary


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--pred-dir", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--protocol", choices=list(PROTOCOLS))
    p.add_argument("--normal-target", choices=NORMAL_TARGETS)
    p.add_argument("--out-dir", required=True, help="writes per_video.parquet and summary.json")


def run(args) -> int:
    cfg = load_config(args.config)
    protocol = args.protocol or cfg["evaluate"]["protocol"]
    normal_target = args.normal_target or cfg["evaluate"]["normal_target"]
    per_video = evaluate_split(cfg, args.pred_dir, args.split, protocol, normal_target)
    out = Path(args.out_dir)
    write_table(per_video, out / "per_video.parquet")
    summary = summarize(per_video) | {"protocol": protocol, "normal_target": normal_target, "split": args.split}
    write_json(out / "summary.json", summary)
    a = summary["all"]
    print(f"J={a['J']:.4f} F={a['F']:.4f} J&F={a['J&F']:.4f} (broken J&F={summary['broken']['J&F']}, "
          f"normal J&F={summary['normal']['J&F']})")
    return 0
