"""Frames/s of brokenvideos.metrics.jf against vos-benchmark's per-frame evaluator, and their agreement.

Masks: a few moving ellipses (instance ids 1..3); the prediction is the GT perturbed (shifted,
rescaled, one spurious blob every few frames). Both evaluators run in memory on the same volumes;
``mevis`` feeds vos-benchmark the union masks, ``davis`` the id masks. Then ``evaluate_dirs``
(PNG decoding included) with 1 and 2 worker processes. Prints figures; it is not a test.

    .venv/bin/python benchmarks/bench_jf.py [--frames 30] [--repeat 3] [--videos 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from brokenvideos.io.masks import write_video_masks
from brokenvideos.metrics.evaluate_masks import evaluate_dirs
from brokenvideos.metrics.jf import evaluate_video, jf_per_frame

RESOLUTIONS = {"480p": (480, 854), "1080p": (1080, 1920)}


def ellipses(shape, centres, axes) -> np.ndarray:
    """Index mask with ellipse k+1 at centres[k] (y, x) with semi-axes axes[k] (ry, rx)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, np.uint8)
    for k, ((cy, cx), (ry, rx)) in enumerate(zip(centres, axes)):
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k + 1
    return mask


def make_video(shape, frames, seed) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = shape
    start = rng.uniform([0.25 * h, 0.2 * w], [0.75 * h, 0.8 * w], size=(3, 2))
    velocity = rng.uniform(-0.004, 0.004, size=(3, 2)) * [h, w]
    axes = rng.uniform(0.06, 0.14, size=(3, 2)) * h
    gt, pred = [], []
    for t in range(frames):
        centres = start + t * velocity
        gt.append(ellipses(shape, centres, axes))
        jitter = rng.normal(0, 0.01 * h, size=(3, 2))
        p = ellipses(shape, centres + jitter, axes * rng.uniform(0.9, 1.1, size=(3, 2)))
        if t % 5 == 0:  # a spurious detection labelled 1
            y, x = rng.uniform([0.05 * h, 0.05 * w], [0.2 * h, 0.95 * w]).astype(int)
            p[y : y + h // 20, x : x + w // 30] = 1
        pred.append(p)
    return np.stack(gt), np.stack(pred)


def best_times(fns: dict, repeat: int) -> tuple[dict, dict]:
    """Fastest of ``repeat`` interleaved runs of each function, and each one's result.

    Interleaving and keeping the minimum make the ratio robust to other load on the machine.
    """
    best, results = {name: float("inf") for name in fns}, {}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def run_vos(gt, pred):
    """vos-benchmark's Evaluator fed frame by frame, as its VideoEvaluator does."""
    # imported here: --workers children re-import this script and need not pay for scikit-image
    from vos_benchmark.evaluator import Evaluator

    evaluator = Evaluator()
    for g, p in zip(gt, pred):
        evaluator.feed_frame(p, g)
    evaluator.conclude()
    return evaluator


def compare(name, gt, pred, protocol, repeat) -> None:
    """Frames/s of both evaluators on one video, and the largest difference of their numbers."""
    if protocol == "mevis":  # vos-benchmark has no union mode: it gets the binary union masks
        vos_gt, vos_pred = (gt > 0).astype(np.uint8), (pred > 0).astype(np.uint8)
    else:
        vos_gt, vos_pred = gt, pred
    seconds, results = best_times({"vos": lambda: run_vos(vos_gt, vos_pred),
                                   "ours": lambda: evaluate_video(gt, pred, protocol)}, repeat)
    (vos_s, vos), (ours_s, ours) = (seconds["vos"], results["vos"]), (seconds["ours"], results["ours"])
    diff = 0.0
    for row in ours:  # vos-benchmark keeps per-frame fractions and reports means in percent
        k = row["object"]
        vos_j, vos_f = np.array(vos.object_iou[k]), np.array(vos.boundary_f[k])
        j, f = jf_per_frame(vos_gt, vos_pred, object_id=k)
        diff = max(diff, np.abs(j - vos_j).max(), np.abs(f - vos_f).max(),
                   abs(row["J"] - vos_j.mean()), abs(row["F"] - vos_f.mean()))
    n = len(gt)
    print(f"{name:5s} {protocol:5s} {len(ours)} obj: vos-benchmark {n / vos_s:6.1f} frames/s, "
          f"ours {n / ours_s:6.1f} frames/s, speed-up {vos_s / ours_s:4.1f}x, max |dJ|,|dF| {diff:.1e}")


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def scaling(frames, videos) -> None:
    """evaluate_dirs on PNGs (decoding and worker start-up included) with 1 and 2 processes.

    Best of two runs each. CPU seconds are printed beside wall seconds: on a machine other
    sessions keep busy, the kernel's per-session fair share (autogroup) can leave no second core.
    """
    with tempfile.TemporaryDirectory() as tmp:
        gt_dir, pred_dir = Path(tmp, "gt"), Path(tmp, "pred")
        for v in range(videos):
            gt, pred = make_video(RESOLUTIONS["1080p"], frames, seed=100 + v)
            write_video_masks(gt_dir / f"video{v}", gt, {})
            write_video_masks(pred_dir / f"video{v}", pred, {})

        def run(workers):
            start = cpu_seconds()
            evaluate_dirs(gt_dir, pred_dir, protocol="davis", workers=workers)
            return cpu_seconds() - start

        seconds, cpu = best_times({1: lambda: run(1), 2: lambda: run(2)}, repeat=2)
        for workers, s in seconds.items():
            print(f"evaluate_dirs 1080p davis, {videos} videos x {frames} frames, --workers {workers}: "
                  f"{s:.2f} s wall ({cpu[workers]:.2f} CPU s), {videos * frames / s:.0f} frames/s")
        print(f"--workers 2 vs 1: {seconds[1] / seconds[2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--videos", type=int, default=8, help="videos for the --workers scaling run")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    for name, shape in RESOLUTIONS.items():
        gt, pred = make_video(shape, args.frames, seed=0)
        for protocol in ("mevis", "davis"):
            compare(name, gt, pred, protocol, args.repeat)
    scaling(args.frames, args.videos)


if __name__ == "__main__":
    main()
