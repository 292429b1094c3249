"""Detection speed on this CPU: frozen-encoder features and frame-prediction-error extraction in
frames/s with batching, and the wrappers' cost over calling the bare models on the same tensors.

    python benchmarks/bench_detect.py [--threads 1] [--size 96 128] [--repeats 5]

Figures are printed, not asserted (a shared machine makes timings noisy: the best of N repeats).
"""

from __future__ import annotations

import argparse
import time

import torch

from brokenvideos.models.backbones import FrozenImageEncoder
from brokenvideos.detect.predictor import FramePredictor, extrapolate


def paired(fa, fb, repeats: int) -> tuple[float, float, float]:
    """Best times of fa and fb, and the median of their per-pair ratio: the two run back to back
    in alternating order, so load from other processes hits both alike."""
    fa(), fb()  # warm-up
    ta, tb, ratios = [], [], []
    for r in range(repeats):
        pair = []
        for fn in ((fa, fb) if r % 2 == 0 else (fb, fa)):
            t0 = time.perf_counter()
            fn()
            pair.append(time.perf_counter() - t0)
        a, b = pair if r % 2 == 0 else pair[::-1]
        ta.append(a), tb.append(b), ratios.append(a / b)
    ratios.sort()
    return min(ta), min(tb), ratios[len(ratios) // 2]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    p.add_argument("--repeats", type=int, default=11)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    h, w = args.size
    print(f"threads {args.threads}, frames {h}x{w}, best of {args.repeats}")

    enc = FrozenImageEncoder("efficientnet_lite0")
    bare = enc.model
    for batch in (1, 8, 32):
        x = torch.rand(batch, 3, h, w)
        xn = enc.preprocess(x)

        def wrapped():
            enc(x)

        def direct():
            with torch.no_grad():
                bare.forward_head(bare.forward_features(xn), pre_logits=True)

        tw, td, ratio = paired(wrapped, direct, args.repeats)
        print(f"encoder efficientnet_lite0 batch {batch:3d}: {batch / tw:7.1f} frames/s wrapped, "
              f"{batch / td:7.1f} bare, wrapper cost {100 * (ratio - 1):+.1f} % (median of paired runs; includes normalisation)")

    torch.manual_seed(0)
    pred = FramePredictor().eval()
    for clips in (1, 4, 16):
        frames = torch.rand(clips, 7, 3, h, w)
        f0 = frames[:, :-2].reshape(-1, 3, h, w)
        f1 = frames[:, 1:-1].reshape(-1, 3, h, w)

        def wrapped():
            with torch.no_grad():
                pred.errors(frames).mean(dim=1)

        def direct():
            with torch.no_grad():
                pred(f0, f1)

        def flow_only():
            with torch.no_grad():
                extrapolate(f0, f1)

        tw, td, ratio = paired(wrapped, direct, args.repeats)
        tf = min(_timed(flow_only) for _ in range(args.repeats))
        n = clips * 5  # predicted frames per batch (T - 2 per clip)
        print(f"prediction errors, {clips:2d} clips of 7 ({n:3d} predicted frames): {n / tw:7.1f} frames/s "
              f"wrapped (errors + temporal mean), {n / td:7.1f} bare, wrapper cost {100 * (ratio - 1):+.1f} %; "
              f"optical flow + warp alone {n / tf:7.1f} frames/s ({100 * tf / td:.0f} % of the bare call)")


if __name__ == "__main__":
    main()
