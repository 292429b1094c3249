"""Figures people would rather look at than read: training curves and prediction overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.video import read_video


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(metrics_csv, out_path) -> None:
    curves = pd.read_csv(metrics_csv)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, col, title in zip(axes, ("loss", "lr", "clips_per_s"), ("training loss (BCE + Dice)", "learning rate",
                                                                    "throughput (clips/s)")):
        ax.plot(curves.epoch, curves[col], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def overlays(videos: pd.DataFrame, pred_dir, out_path, max_videos: int = 4) -> None:
    """Rows of (frame, ground truth in green, prediction in red) on the frame where GT is largest."""
    plt = _plt()
    broken = videos[videos.label == "broken"].head(max_videos)
    if broken.empty:
        return
    fig, axes = plt.subplots(len(broken), 3, figsize=(9, 2.4 * len(broken)), squeeze=False)
    for ax_row, row in zip(axes, broken.to_dict("records")):
        frames = read_video(row["path"])
        gt = read_video_masks(row["mask_dir"]) > 0
        pred = read_video_masks(Path(pred_dir) / row["video_id"]) > 0
        t = int(gt.reshape(len(gt), -1).sum(1).argmax())
        tint = lambda m, c: np.where(m[..., None], (0.5 * frames[t] + 0.5 * np.array(c)).astype(np.uint8), frames[t])  # noqa: E731
        for ax, img, title in zip(ax_row, (frames[t], tint(gt[t], (0, 255, 0)), tint(pred[t], (255, 0, 0))),
                                  (f"{row['video_id']} t={t}", "ground truth", "prediction")):
            ax.imshow(img)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100, metadata={"Software": None})
    plt.close(fig)
