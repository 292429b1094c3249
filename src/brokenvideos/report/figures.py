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


def training_curves(runs: dict, out_path) -> None:
    """Loss, learning rate and throughput per epoch; one line per localizer ({name: metrics.csv})."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for name, metrics_csv in runs.items():
        curves = pd.read_csv(metrics_csv)
        for ax, col in zip(axes, ("loss", "lr", "clips_per_s")):
            ax.plot(curves.epoch, curves[col], marker="o", ms=3, label=name)
    for ax, title in zip(axes, ("training loss (BCE + Dice)", "learning rate", "throughput (clips/s)")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
    if len(runs) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def overlays(videos: pd.DataFrame, pred_dirs: dict, out_path, max_videos: int = 4) -> None:
    """Rows of (frame, ground truth in green, each localizer's prediction in red ({name: dir})) on
    the frame where the ground truth is largest."""
    plt = _plt()
    broken = videos[videos.label == "broken"].head(max_videos)
    if broken.empty:
        return
    cols = 2 + len(pred_dirs)
    fig, axes = plt.subplots(len(broken), cols, figsize=(3 * cols, 2.4 * len(broken)), squeeze=False)
    for ax_row, row in zip(axes, broken.to_dict("records")):
        frames = read_video(row["path"])
        gt = read_video_masks(row["mask_dir"]) > 0
        preds = [read_video_masks(Path(d) / row["video_id"]) > 0 for d in pred_dirs.values()]
        t = int(gt.reshape(len(gt), -1).sum(1).argmax())
        tint = lambda m, c: np.where(m[..., None], (0.5 * frames[t] + 0.5 * np.array(c)).astype(np.uint8), frames[t])  # noqa: E731
        images = [frames[t], tint(gt[t], (0, 255, 0))] + [tint(p[t], (255, 0, 0)) for p in preds]
        titles = [f"{row['video_id']} t={t}", "ground truth"] + [f"{name}" for name in pred_dirs]
        for ax, img, title in zip(ax_row, images, titles):
            ax.imshow(img)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100, metadata={"Software": None})
    plt.close(fig)
