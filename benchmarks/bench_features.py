"""Feature extraction speed: frames/s into the feature store with 1 and 2 local workers.

    python benchmarks/bench_features.py [--count 48] [--backbone efficientnet_lite0] [--ray]

Each configuration fills a fresh store with the same videos (16-frame 128x96 clips, the embedded
default's size, rendered here). Printed: frames/s from the first video's start to the last one's
end in any worker (decode, encode and the shard write; start-up excluded), and the step's seconds
with start-up (model load, worker processes or the Ray cluster). Then: a re-run over the full
store (what a protocol re-run or a resumed job costs), and whether the two worker counts wrote the
same bytes. ``--ray`` adds Ray Data map_batches with 2 actors on a private local cluster.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from brokenvideos.detect.feature_store import build_store, read_store  # noqa: E402
from bench_degrade import own_clips  # noqa: E402  (the same 16-frame 128x96 clips)


def clip_rows(folder: Path, count: int) -> list[dict]:
    return [{"video_id": path.stem, "path": str(path), "num_frames": 16} for path in own_clips(folder, count)]


def timed(rows, backbone, store, **kw) -> dict:
    meta = build_store(rows, backbone, None, store, **kw)
    if "ray_cfg" in kw:  # every Ray run starts its own cluster, as a job does
        import ray

        ray.shutdown()
    return meta


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--ray", action="store_true", help="also Ray Data map_batches with 2 actors")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    configs = {"1 local worker x 2 threads": {"workers": 1, "threads": 2},
               "2 local workers x 1 thread": {"workers": 2, "threads": 2}}
    if args.ray:
        configs["Ray Data map_batches, 2 actors x 1 CPU"] = {
            "ray_cfg": {"num_workers": 2, "cpus_per_worker": 1, "batch_size": 1}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = clip_rows(tmp, args.count)
        print(f"{args.count} videos x 16 frames of 128x96, backbone {args.backbone}, 2 cores")
        print("| configuration | frames/s (start-up excluded) | step seconds (start-up included) |")
        print("|---|---|---|")
        timed(rows[:2], args.backbone, tmp / "warm-up")  # imports and the weights file, once
        for i, (name, kw) in enumerate(configs.items()):
            meta = timed(rows, args.backbone, tmp / str(i), **kw)
            print(f"| {name} | {meta['frames_per_s']:.1f} | {meta['seconds']:.1f} |")
        meta = timed(rows, args.backbone, tmp / "0", workers=1, threads=2)
        print(f"| re-run over the full store | nothing encoded ({meta['reused']} reused) | {meta['seconds']:.1f} |")
        one, two = read_store(tmp / "0")[1], read_store(tmp / "1")[1]
        same = all(one[v].tobytes() == two[v].tobytes() for v in one)
        diff = max(float(np.abs(one[v] - two[v]).max()) for v in one)
        print(f"1 worker x 2 threads vs 2 workers x 1 thread: bit-identical {same}, max |difference| {diff:.1e}")


if __name__ == "__main__":
    main()
