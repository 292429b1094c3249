"""Cost of `brokenvideos degrade` per video, and how close each operation comes to its setting.

    python benchmarks/bench_degrade.py [--videos results/videos/synth-grainy] [--count 8]

For each of He et al.'s nine operation x level cells: seconds per video (median), the measured bit
rate against the source's, and for bit errors the flipped bits and the frames that failed to
decode. Without --videos it renders its own 16-frame 128x96 clips.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from brokenvideos.degrade.ops import LEVELS, degrade
from brokenvideos.io.video import write_video


def own_clips(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        texture = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
        frames = np.stack([texture[:, 2 * t:2 * t + 128] for t in range(16)])
        out.append(folder / f"clip{i}.mp4")
        write_video(out[-1], frames, fps=8)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=Path, help="a folder of mp4s (default: rendered clips)")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--interval", type=int, help="bit-error bytes per flip instead of the paper's")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = sorted(args.videos.glob("*.mp4"))[:args.count] if args.videos else own_clips(tmp, args.count)
        print(f"{len(videos)} videos from {args.videos or 'rendered clips'}")
        print("| op | level | setting | s/video | kbit/s out / source | flipped bits | packets failed |")
        print("|---|---|---|---|---|---|---|")
        for op, levels in LEVELS.items():
            for level in (1, 2, 3):
                secs, ratios, flips, failed = [], [], [], []
                for v in videos:
                    t0 = time.perf_counter()
                    rec = degrade(v, tmp / "out.mp4", op, level, interval=args.interval)
                    secs.append(time.perf_counter() - t0)
                    ratios.append(rec["kbps"] / rec["source_kbps"])
                    flips.append(rec["flipped_bits"])
                    failed.append(rec["packets_failed"])
                print(f"| {op} | {level} | {rec['setting']} | {statistics.median(secs):.3f} | "
                      f"{statistics.mean(ratios):.3f} | {sum(flips)} | {sum(failed)} |")


if __name__ == "__main__":
    main()
