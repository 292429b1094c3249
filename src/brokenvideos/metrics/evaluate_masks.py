"""``brokenvideos evaluate-masks``: J, F and J&F of predicted index masks against the ground truth.

GT_DIR and PRED_DIR hold ``<video>/<frame:05d>.png`` DAVIS index masks. OUT.csv gets one row per
evaluated video object (``video, object, J, F, JF``, fractions in [0, 1]); the global J, F and J&F
are the last line of stdout. Global = mean over rows: one row per video under ``mevis``, one per
object under ``davis``, which is each protocol's definition.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import write_text
from brokenvideos.io.masks import frame_name, read_mask, read_video_masks
from brokenvideos.metrics.jf import evaluate_video
from brokenvideos.metrics.protocols import PROTOCOLS, protocol as protocol_spec

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

COLUMNS = ["video", "object", "J", "F", "JF"]


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth masks: GT_DIR/<video>/<frame>.png")
    parser.add_argument("--pred", required=True, type=Path, help="predicted masks, same layout")
    parser.add_argument("--out", required=True, type=Path, help="per-object CSV: video, object, J, F, JF")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="mevis",
                        help="mevis: one object per video, the union of its instances (default); "
                             "davis: one object per GT instance id")
    parser.add_argument("--skip-first-last", action="store_true",
                        help="drop each video's first and last frames (DAVIS semi-supervised)")
    parser.add_argument("--workers", type=int, default=1, help="processes evaluating videos in parallel")


def run(args) -> int:
    start = time.perf_counter()
    table = evaluate_dirs(args.gt, args.pred, protocol=args.protocol,
                          skip_first_last=args.skip_first_last, workers=args.workers)
    write_text(args.out, table.to_csv(index=False))
    if table.empty:
        log.warning("no object to evaluate: the ground truth has no instance (protocol %s)", args.protocol)
    log.info("%d %s objects of %d videos in %.1f s -> %s", len(table), args.protocol,
             table["video"].nunique(), time.perf_counter() - start, args.out)
    j, f, jf = table[["J", "F", "JF"]].mean()
    print(f"J={j:.6f} F={f:.6f} J&F={jf:.6f}")
    return 0


def evaluate_dirs(gt_dir, pred_dir, video_ids=None, protocol: str = "mevis",
                  skip_first_last: bool = False, workers: int = 1) -> pd.DataFrame:
    """Per-object J, F, JF (columns ``video, object, J, F, JF``) of the videos in ``gt_dir``.

    ``video_ids`` defaults to every video folder of ``gt_dir``, sorted; rows follow that order
    whatever ``workers`` is. Prediction frames beyond the GT's are ignored, as DAVIS does for
    sparse annotations. Raises InputError naming the video and frame of a missing prediction video
    or frame, or of a prediction frame whose size differs from the GT's.
    """
    import pandas as pd  # not at the top: spawned workers import this module and need no pandas (~0.8 s)

    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    protocol_spec(protocol)  # an unknown name fails before any video is read
    if video_ids is None:
        video_ids = _video_ids(gt_dir)
    for video in video_ids:  # fail before any work is done
        if not (pred_dir / video).is_dir():
            raise InputError(pred_dir / video, "prediction video is missing")
    jobs = [(gt_dir / video, pred_dir / video, protocol, skip_first_last) for video in video_ids]
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: OpenCV's thread pool can hang a forked child (opencv/opencv#5150)
        pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"))
        try:
            outcomes = list(pool.map(_evaluate_job, jobs))
        finally:
            pool.shutdown(cancel_futures=True)  # after an error, the queued videos are not run
    else:
        outcomes = [_evaluate_job(job) for job in jobs]
    rows = [{"video": video, **result} for video, results in zip(video_ids, outcomes) for result in results]
    return pd.DataFrame(rows, columns=COLUMNS)


def _video_ids(gt_dir: Path) -> list[str]:
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "ground-truth directory is missing")
    videos = sorted(p.name for p in gt_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not videos:
        raise InputError(gt_dir, "no video folders found")
    return videos


def _evaluate_job(job) -> list[dict]:
    """Read and evaluate one video (in a worker process when --workers > 1)."""
    gt_video, pred_video, protocol, skip_first_last = job
    gt = read_video_masks(gt_video)
    pred = _read_prediction(pred_video, gt)
    if skip_first_last and len(gt) < 3:
        raise InputError(gt_video, f"--skip-first-last needs at least 3 frames, the video has {len(gt)}")
    return evaluate_video(gt, pred, protocol, skip_first_last)


def _read_prediction(pred_video: Path, gt: np.ndarray) -> np.ndarray:
    """The prediction's frames that the GT has, each checked for presence and size."""
    pred = np.empty_like(gt)
    for t in range(len(gt)):
        path = pred_video / frame_name(t)  # read_video_masks checked that the GT frames are named so
        if not path.is_file():
            raise InputError(path, f"prediction frame is missing (the ground truth has {len(gt)} frames)")
        mask = read_mask(path)
        if mask.shape != gt.shape[1:]:
            raise InputError(path, f"prediction is {mask.shape[1]}x{mask.shape[0]}, "
                                   f"ground truth is {gt.shape[2]}x{gt.shape[1]}")
        pred[t] = mask
    return pred
