"""Peak memory of `brokenvideos ingest` for 20 vs 200 videos of the same size (issue 15, part 2).

The ingest step checks every video in a first pass and writes the masks video by video in a
second, keeping no mask volume across items, so its peak RSS should not grow with the dataset:
the bar is 200 videos ≤ 1.5× the peak of 20. Each video has a non-empty per-frame PNG mask folder
(one folder, symlinked under every video's name, so the fixture is quick to build); the
all-in-memory design this replaced would have held N volumes (printed for comparison).

Each ingest runs in a fresh child of a fresh Python, whose ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
is the ingest's peak alone. ``--baseline REV`` also measures ``dataset/ingest.py`` as it was at a
git revision from before the two passes (its ``ingest(root, name, out, results, masks_dir=...)``).
Usage: ``.venv/bin/python benchmarks/bench_ingest_memory.py [--counts 20 200] [--frames 32]
[--size 160] [--baseline REV]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from brokenvideos.io.masks import write_video_masks  # noqa: E402
from brokenvideos.io.video import write_video  # noqa: E402

# run one command as this helper's only child and print that child's peak RSS in KiB (Linux)
MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
           "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def build(root: Path, count: int, frames: int, size: int) -> None:
    """``count`` distinct videos under root/videos, each with the same non-empty masks."""
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        video = np.stack([np.stack([(x + 3 * t + i) % 256, (y + 5 * t) % 256, np.full_like(x, 7 * i % 256)], -1)
                          for t in range(frames)]).astype(np.uint8)
        write_video(root / "videos" / f"v{i:04d}.mp4", video, fps=8)
    vol = np.zeros((frames, size, size), np.uint8)
    vol[:, size // 4:size // 2, size // 4:size // 2] = 1
    write_video_masks(root / "source_masks", vol, {1: "motion_anomaly"})
    (root / "masks").mkdir()
    for i in range(count):
        os.symlink(root / "source_masks", root / "masks" / f"v{i:04d}")


def peak_rss_kib(root: Path, count: int, baseline: str | None = None) -> tuple[int, float]:
    out, results, masks = root / "results" / f"ingest{count}.parquet", root / "results", root / "masks"
    if baseline is None:
        step = ["-m", "brokenvideos", "ingest", "--root", str(root / "videos"), "--name", f"n{count}", "--out", str(out),
                "--results", str(results), "--masks-dir", str(masks)]
    else:
        old = subprocess.run(["git", "-C", str(REPO), "show", f"{baseline}:src/brokenvideos/dataset/ingest.py"],
                             check=True, capture_output=True, text=True).stdout
        (root / "old_ingest.py").write_text(old)
        step = ["-c", f"import sys; sys.path.insert(0, {str(root)!r}); import old_ingest; "
                      f"old_ingest.ingest({str(root / 'videos')!r}, 'n{count}', {str(out)!r}, {str(results)!r}, "
                      f"masks_dir={str(masks)!r})"]
    cmd = [sys.executable, "-c", MEASURE, sys.executable, *step]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    kib = int(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.split()[-1])
    return kib, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs=2, default=[20, 200])
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--baseline", metavar="REV", help="also measure dataset/ingest.py at this git revision")
    args = p.parse_args()
    volume_mib = args.frames * args.size * args.size / 2**20
    print(f"videos: {args.frames} frames of {args.size}x{args.size}, one mask volume = {volume_mib:.2f} MiB")
    peaks: dict[tuple[str, int], int] = {}
    versions = [("two passes", None)] + ([(f"at {args.baseline}", args.baseline)] if args.baseline else [])
    for count in args.counts:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            root = Path(tmp)
            build(root, count, args.frames, args.size)
            for label, rev in versions:
                kib, seconds = peak_rss_kib(root, count, rev)
                peaks[label, count] = kib
                print(f"{label:>12}, {count:4d} videos: peak RSS {kib / 1024:7.1f} MiB  ({seconds:5.1f} s; "
                      f"{count} volumes are {count * volume_mib:6.1f} MiB)")
    small, large = args.counts
    for label, _ in versions:
        ratio = peaks[label, large] / peaks[label, small]
        print(f"{label:>12}: ratio {large}/{small} = {ratio:.2f}x  (bar: <= 1.5x) {'OK' if ratio <= 1.5 else 'over'}")


if __name__ == "__main__":
    main()
