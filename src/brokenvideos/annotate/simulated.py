"""A simulated annotator: the clicking protocol of interactive-segmentation benchmarks.

Measuring SAM2 annotation quality against exact masks needs clicks that do not depend on who
clicks. The protocol used by interactive-segmentation evaluations gives them:

1. the first click is positive, at the point of the ground-truth instance farthest from its
   boundary (the most unambiguous place to click);
2. every next click goes to the largest error region of the current prediction: a missed region
   (false negative) gets a positive click, a spurious one (false positive) a negative click, at
   that region's point farthest from its boundary.

The image border counts as boundary (a person does not click on the frame edge). Ties are broken
towards the centre of the tied points, so a rectangle is clicked at its centre. The clicks land on
the frame where the instance is largest and come out as prompt-file dataclasses, so a simulated
session can be saved and replayed exactly like a human one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from brokenvideos.annotate.prompts_file import FramePrompt, InstancePrompts, VideoPrompts


@dataclass(frozen=True)
class Click:
    x: int  # column
    y: int  # row
    positive: bool


# predict(clicks) -> H×W bool mask of the instance on the click frame
Predict = Callable[[Sequence[Click]], np.ndarray]


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of ``region`` farthest from its boundary (image border included)."""
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    rows, cols = np.nonzero(dist >= dist.max() - 1e-4)
    k = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return int(cols[k]), int(rows[k])


def first_click(gt: np.ndarray) -> Click | None:
    gt = gt.astype(bool)
    if not gt.any():
        return None
    x, y = interior_point(gt)
    return Click(x, y, True)


def next_click(gt: np.ndarray, pred: np.ndarray) -> Click | None:
    """Click in the largest error component; ``None`` when the prediction is exact."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    best = None  # (area, positive, component mask)
    for positive, error in ((True, gt & ~pred), (False, pred & ~gt)):
        if not error.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:  # ties keep the false negative: missing beats spurious
            best = (area, positive, labels == k)
    if best is None:
        return None
    x, y = interior_point(best[2])
    return Click(x, y, best[1])


def simulate_clicks(gt: np.ndarray, n_clicks: int, predict: Predict | None = None) -> list[Click]:
    """Up to ``n_clicks`` clicks on one frame; stops early once the prediction is exact.

    ``predict`` maps the clicks so far to the model's mask; it is only needed beyond one click.
    """
    click = first_click(gt)
    clicks = [] if click is None else [click]
    while clicks and len(clicks) < n_clicks:
        if predict is None:
            raise ValueError("more than one simulated click needs a predict callback")
        click = next_click(gt, predict(clicks))
        if click is None:
            break
        clicks.append(click)
    return clicks


def largest_frame(instance_masks: np.ndarray) -> int:
    """Index of the frame where the instance covers most pixels (the annotator's natural pick)."""
    return int(np.argmax(instance_masks.reshape(len(instance_masks), -1).sum(axis=1)))


def to_frame_prompt(frame: int, clicks: Sequence[Click]) -> FramePrompt:
    return FramePrompt(frame, tuple((float(c.x), float(c.y)) for c in clicks), tuple(int(c.positive) for c in clicks))


def simulate_video_prompts(
    gt_ids: np.ndarray,
    instances: dict[int, str],
    n_clicks: int,
    predict: Callable[[int, int, Sequence[Click]], np.ndarray] | None = None,
) -> VideoPrompts:
    """Prompts for every instance present in a T×H×W ground-truth id volume.

    ``predict(instance_id, frame, clicks)`` returns the model's mask for that instance alone.
    Ids absent from ``instances`` get subcategory ``unknown``.
    """
    out = {}
    for inst_id in (int(v) for v in np.unique(gt_ids) if v != 0):
        volume = gt_ids == inst_id
        frame = largest_frame(volume)
        per_frame = None if predict is None else (lambda cl, i=inst_id, f=frame: predict(i, f, cl))
        clicks = simulate_clicks(volume[frame], n_clicks, per_frame)
        out[inst_id] = InstancePrompts(instances.get(inst_id, "unknown"), (to_frame_prompt(frame, clicks),))
    return VideoPrompts(out)


def truncate(prompts: VideoPrompts, n_clicks: int) -> VideoPrompts:
    """The first ``n_clicks`` clicks of each instance: the protocol is sequential, so these are
    exactly the clicks a budget of ``n_clicks`` would have produced."""
    return VideoPrompts({
        i: InstancePrompts(inst.subcategory, tuple(
            FramePrompt(p.frame, p.points[:n_clicks], p.labels[:n_clicks], p.box) for p in inst.prompts))
        for i, inst in prompts.instances.items()
    })
