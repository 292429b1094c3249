"""SAM2 propagation speed on CPU, and what our ``sam2`` annotator adds on top of SAM2's own loop.

Usage: ``python benchmarks/bench_sam2.py [--sizes 256 512] [--frames 16] [--threads N] [--repeat 3]``

A random-weight tiny model (``configs/sam2.1/sam2.1_hiera_t.yaml``) does the same arithmetic as
the trained one, so its speed is the real speed. One instance is clicked on the middle frame and
propagated forward and backward, as the annotator does. Compared, on the same loaded video:

* SAM2's own loop: ``reset_state``, ``add_new_points_or_box``, ``propagate_in_video`` both ways,
  each frame's logits thresholded to a numpy mask (SAM2's README example);
* our wrapper: ``Sam2Session.run`` (the same calls plus merging instances into one id map).

The overhead target is <= 10 %. The best of ``--repeat`` runs is reported (the machine is shared).
Decoding the mp4 and writing SAM2's JPEG folder happen once per video and are reported apart.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from brokenvideos.annotate import build_annotator
from brokenvideos.annotate.prompts_file import FramePrompt, InstancePrompts, VideoPrompts, write_prompts
from brokenvideos.io.video import read_video, write_video

H, W = 240, 320


def make_video(path: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 80, (frames, H, W, 3)).astype(np.uint8)
    for t in range(frames):
        cv2.circle(video[t], (60 + 8 * t, 120), 30, (230, 200, 40), -1)
    write_video(path, video, fps=8)


def sam2_loop(predictor, state, frame: int, point) -> int:
    predictor.reset_state(state)
    predictor.add_new_points_or_box(state, frame_idx=frame, obj_id=1, points=[point], labels=[1])
    n = 0
    for reverse in (False, True):
        for _, obj_ids, logits in predictor.propagate_in_video(state, reverse=reverse):
            {i: (logits[k] > 0.0).cpu().numpy() for k, i in enumerate(obj_ids)}
            n += 1
    return n


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(size: int, video: dict, frames: int, repeat: int, tmp: Path) -> None:
    middle, point = frames // 2, (60.0 + 8 * (frames // 2), 120.0)
    prompts = VideoPrompts({1: InstancePrompts("visual_breakdown", (FramePrompt(middle, (point,), (1,)),))})
    write_prompts(tmp / "prompts.json", {video["video_id"]: prompts})
    torch.manual_seed(0)
    annotator = build_annotator({"method": "sam2", "sam2": {
        "checkpoint": None, "allow_random_weights": True, "image_size": size, "device": "cpu",
        "prompts_file": str(tmp / "prompts.json")}}, str(tmp / "results"))

    start = time.perf_counter()
    with annotator.session(video) as session:
        io_s = time.perf_counter() - start
        n = sam2_loop(annotator.predictor, session.state, middle, point)  # warm-up
        raw, ours = [], []
        for _ in range(repeat):  # interleaved, so drifting machine load hits both alike
            raw.append(timed(lambda: sam2_loop(annotator.predictor, session.state, middle, point)))
            ours.append(timed(lambda: session.run(prompts)))
    raw_s, ours_s = min(raw), min(ours)
    print(f"image_size={size}: {frames} frames ({n} propagation steps), threads={torch.get_num_threads()}")
    print(f"  SAM2 propagate_in_video loop : {raw_s:7.3f} s  = {n / raw_s:6.2f} frames/s")
    print(f"  brokenvideos Sam2Session.run : {ours_s:7.3f} s  = {n / ours_s:6.2f} frames/s")
    print(f"  wrapper overhead             : {100 * (ours_s - raw_s) / raw_s:+6.1f} %  (target <= 10 %)")
    print(f"  per video once: decode mp4 + write JPEGs + init_state = {io_s:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=r"cannot import name '_C'")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        make_video(path, args.frames)
        assert read_video(path).shape[0] == args.frames
        video = {"video_id": "bench", "path": str(path), "label": "broken"}
        for size in args.sizes:
            bench(size, video, args.frames, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
