"""Generator families: each leaves its own fingerprint on every frame, so detectors and
cross-generator protocols have something to learn and to fail to transfer.

A fingerprint is applied to the rendered scene *before* region-level artifacts, and identically to
the render with and without artifacts, so masks stay exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from brokenvideos.config import derive_seed

FAMILIES = ("upsampler", "smoother", "grainy", "camera")
REAL_FAMILIES = {"camera"}


def apply_fingerprint(frames: np.ndarray, family: str, seed: int) -> np.ndarray:
    """uint8 T×H×W×3 → uint8, deterministic in (family, seed)."""
    x = frames.astype(np.float32)
    T, H, W, _ = x.shape
    if family == "upsampler":
        # Latent-space decoders upsample: half-resolution content, bicubic overshoot, periodic trace.
        small = [cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in x]
        x = np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_CUBIC) for f in small])
        grid = ((np.indices((H, W)).sum(0) % 2) * 2 - 1).astype(np.float32)[..., None]
        x = x + 1.5 * grid
    elif family == "smoother":
        # Over-smoothed temporal prior: 3-tap temporal filter and waxy spatial blur.
        padded = np.concatenate([x[:1], x, x[-1:]])
        x = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
        x = np.stack([cv2.GaussianBlur(f, (0, 0), 0.8) for f in x])
    elif family == "grainy":
        # Saturated colour response plus a fixed noise pattern shared by every video of the family.
        grey = x.mean(-1, keepdims=True)
        x = grey + 1.35 * (x - grey)
        x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** 0.85
        pattern = np.random.default_rng(derive_seed("family-pattern", family)).normal(0, 3.0, (H, W, 3))
        x = x + pattern.astype(np.float32)
    elif family == "camera":
        # Camera-like: vignetting, slight lens blur, exposure flicker and per-frame shot noise.
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2
        vignette = (1.0 - 0.5 * r2)[..., None]
        x = np.stack([cv2.GaussianBlur(f, (0, 0), 0.6) for f in x]) * vignette
        x = x * (1 + 0.01 * rng.standard_normal((T, 1, 1, 1))).astype(np.float32)
        x = x + rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(1.0 + 0.03 * np.clip(x, 0, None))
    else:
        raise ValueError(f"unknown synthetic family {family!r}; expected one of {FAMILIES}")
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
