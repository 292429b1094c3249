"""``annotation-quality``: how good are SAM2 masks for a given number of clicks?

Before trusting SAM2 annotations (or choosing how many clicks to pay annotators for), measure them
where the truth is known: on videos whose generator emitted exact masks. The simulated annotator
clicks as interactive-segmentation benchmarks do, SAM2 propagates, and the result is scored with
the DAVIS measures against the exact masks, per video and click budget. The budgets share one
click sequence per instance (the protocol is sequential), so the curve isolates the effect of
adding clicks.

Scores are ``brokenvideos.metrics.jf.evaluate_video`` (J, F and J&F as in DAVIS 2017), averaged
over a video's objects: by default every instance is an object (``davis``), as interactive VOS
benchmarks score; ``--protocol mevis`` scores the union of a video's instances instead.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from brokenvideos.annotate.sam2_annotator import Sam2Annotator
from brokenvideos.annotate.simulated import simulate_video_prompts, truncate
from brokenvideos.config import load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import atomic_path
from brokenvideos.io.masks import read_instances, read_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.metrics.jf import evaluate_video

log = logging.getLogger(__name__)

COLUMNS = ["video_id", "clicks", "clicks_used", "J", "F", "JF", "seconds"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", required=True, help="videos.parquet (paths relative to the repository root)")
    parser.add_argument("--gt-root", default="results/generated_masks",
                        help="exact masks: <root>/<video_id>/<frame>.png")
    parser.add_argument("--config", default="config.yaml", help="config whose annotate.sam2 section builds SAM2")
    parser.add_argument("--clicks", type=int, nargs="+", default=[1, 2, 3, 5], help="click budgets per instance")
    parser.add_argument("--out", default="results/annotation_quality/quality.csv")
    parser.add_argument("--figure", help="PNG of J&F against clicks")
    parser.add_argument("--max-videos", type=int, help="first N videos (table order) that have artifacts")
    parser.add_argument("--protocol", choices=["davis", "mevis"], default="davis",
                        help="davis: every instance is an object (default); mevis: union per video")


# --- scoring -------------------------------------------------------------------------------------

def score(gt: np.ndarray, pred: np.ndarray, protocol: str) -> dict:
    """Mean J, F and J&F over the video's objects (DAVIS 2017 measures)."""
    objects = evaluate_video(gt, pred, protocol)
    return {k: float(np.mean([o[k] for o in objects])) for k in ("J", "F", "JF")}


# --- the step ------------------------------------------------------------------------------------

def build_annotator(config_path: str, gt_root: str, max_clicks: int) -> Sam2Annotator:
    cfg = load_config(config_path)
    section = cfg["annotate"].get("sam2")
    if section is None:
        raise BrokenVideosError(f"{config_path}: annotate.sam2: annotation-quality needs this section "
                                "(checkpoint, config, image_size, device)")
    section = {k: v for k, v in section.items() if k not in ("prompts_file", "simulate")}
    section["simulate"] = {"clicks": max_clicks, "gt_root": gt_root}
    return Sam2Annotator({"method": "sam2", "sam2": section}, cfg["results"])


def evaluate(annotator: Sam2Annotator, videos: pd.DataFrame, gt_root: str, budgets: list[int],
             protocol: str, max_videos: int | None = None) -> pd.DataFrame:
    rows, done = [], 0
    for video in videos.to_dict("records"):
        if max_videos is not None and done >= max_videos:
            break
        gt_dir = annotator.gt_dir(video["video_id"])
        if not gt_dir.is_dir():
            continue  # no exact masks (e.g. an ingested real video)
        gt = read_video_masks(gt_dir)
        if not gt.any():
            continue  # nothing to annotate: an empty prediction would score a meaningless 1
        done += 1
        with annotator.session(video) as session:
            if gt.shape != (session.num_frames, session.height, session.width):
                raise BrokenVideosError(f"{gt_dir}: masks are {gt.shape}, video is "
                                        f"{(session.num_frames, session.height, session.width)}")
            clicks = simulate_video_prompts(gt, read_instances(gt_dir), max(budgets), session.predict_instance)
            for n in budgets:
                prompts = truncate(clicks, n)
                start = time.perf_counter()
                pred = session.run(prompts).masks
                seconds = time.perf_counter() - start
                used = np.mean([len(i.initial.points) for i in prompts.instances.values()])
                rows.append({"video_id": video["video_id"], "clicks": n, "clicks_used": float(used),
                             **score(gt, pred, protocol), "seconds": seconds})
        log.info("annotation-quality: %s done (%d)", video["video_id"], done)
    if not rows:
        raise BrokenVideosError(f"{gt_root}: no video of the table has ground-truth artifact masks")
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("clicks", as_index=False)[["clicks_used", "J", "F", "JF"]].mean()


def plot(summary_df: pd.DataFrame, path, protocol: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=150)
    ax.plot(summary_df["clicks"], summary_df["JF"], marker="o", label="J&F")
    ax.plot(summary_df["clicks"], summary_df["J"], marker=".", linestyle="--", label="J")
    ax.plot(summary_df["clicks"], summary_df["F"], marker=".", linestyle=":", label="F")
    ax.set_xlabel("clicks per instance")
    ax.set_ylabel(f"score ({protocol} protocol)")
    ax.set_xticks(list(summary_df["clicks"]))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("SAM2 annotation vs exact masks")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def run(args) -> int:
    budgets = sorted(set(args.clicks))
    if budgets[0] < 1:
        raise BrokenVideosError("--clicks: budgets must be >= 1")
    annotator = build_annotator(args.config, args.gt_root, budgets[-1])
    videos = read_table(args.videos, "videos")
    df = evaluate(annotator, videos, args.gt_root, budgets, args.protocol, args.max_videos)
    with atomic_path(args.out, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f")
    table = summary(df)
    if args.figure:
        plot(table, args.figure, args.protocol)
    for r in table.to_dict("records"):
        print(f"clicks={r['clicks']} J={r['J']:.4f} F={r['F']:.4f} J&F={r['JF']:.4f} "
              f"(videos={df['video_id'].nunique()}, protocol={args.protocol})")
    return 0
