"""Generator families: each leaves its own fingerprint on every frame, so detectors and
cross-generator protocols have something to learn and to fail to transfer.

The fingerprint is the last stage of a render, applied *after* the artifacts, so an artifact region
carries the family's trace like the rest of the frame (no "trace missing here" shortcut). Masks are
exact for the pre-fingerprint render: a filtering fingerprint (blur, resampling) spreads an
artifact by a few pixels, as a real decoder would.

All maths is integer (see ``exact``): the same bytes on every processor and thread count.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from brokenvideos.config import derive_seed
from brokenvideos.generators.synthetic import exact

FAMILIES = ("upsampler", "smoother", "grainy", "camera")
REAL_FAMILIES = {"camera"}
FP = 8  # fractional bits of the intermediate grey levels


def _upsampler(x: np.ndarray) -> np.ndarray:
    # Latent-space decoders upsample: half-resolution content, bicubic overshoot, periodic trace.
    T, H, W, _ = x.shape
    small = exact.round_shift(exact.resize(x, W // 2, H // 2, "area"), 2 * exact.BITS)
    up = exact.resize(small, W, H, "cubic")  # scaled by ONE²
    grid = (np.indices((H, W)).sum(0) % 2) * 2 - 1  # ±1 checkerboard
    return exact.to_uint8(up + (3 * grid * (1 << (2 * exact.BITS - 1)))[..., None], 2 * exact.BITS)


def _smoother(x: np.ndarray) -> np.ndarray:
    # Over-smoothed temporal prior: a [1 2 1]/4 temporal filter, then a waxy spatial blur (σ 0.8).
    x = x.astype(np.int64)
    padded = np.concatenate([x[:1], x, x[-1:]])
    temporal = padded[:-2] + 2 * padded[1:-1] + padded[2:]  # scaled by 4
    return exact.to_uint8(exact.gaussian_blur(temporal, 0.8), 2 * exact.BITS + 2)


@functools.lru_cache(maxsize=1)
def _grainy_gamma() -> np.ndarray:
    # 255·(v/255)^0.85 for v = n/300, n = 0 … 76500, in FP fixed point (scalar libm, once).
    return np.array([int(round(255.0 * (n / 76500.0) ** 0.85 * (1 << FP))) for n in range(76501)], np.int64)


@functools.lru_cache(maxsize=8)
def _grainy_pattern(height: int, width: int) -> np.ndarray:
    # A fixed noise pattern (σ = 3 grey levels) shared by every video of the family.
    rng = np.random.default_rng(derive_seed("family-pattern", "grainy"))
    return exact.irwin_hall_noise(rng, (height, width, 3), 3.0 * (1 << FP))


def _grainy(x: np.ndarray) -> np.ndarray:
    # Saturated colour response (1.35× around grey), a gamma of 0.85, and the fixed pattern.
    T, H, W, _ = x.shape
    x = x.astype(np.int64)
    grey3 = x.sum(-1, keepdims=True)
    n = np.clip(405 * x - 35 * grey3, 0, 76500)  # 300 · (grey + 1.35 · (x − grey))
    return exact.to_uint8(_grainy_gamma()[n] + _grainy_pattern(H, W), FP)


@functools.lru_cache(maxsize=8)
def _vignette(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r2 = ((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2
    return np.rint((1.0 - 0.5 * r2) * exact.ONE).astype(np.int64)[..., None]


@functools.lru_cache(maxsize=1)
def _shot_noise_scale() -> np.ndarray:
    # Shot noise grows with brightness: σ(v) = sqrt(1 + 0.03 v), in FP fixed point (sqrt is exact IEEE).
    return np.array([int(round(math.sqrt(1.0 + 0.03 * v) * (1 << FP))) for v in range(512)], np.int64)


def _camera(x: np.ndarray, seed: int) -> np.ndarray:
    # Camera-like: slight lens blur, vignetting, exposure flicker and per-frame shot noise.
    T, H, W, _ = x.shape
    rng = np.random.default_rng(seed)
    v = exact.round_shift(exact.gaussian_blur(x, 0.6), 2 * exact.BITS - FP)  # FP fixed point
    v = exact.round_shift(v * _vignette(H, W), exact.BITS)
    flicker = exact.ONE + exact.irwin_hall_noise(rng, (T, 1, 1, 1), 0.01 * exact.ONE)
    v = exact.round_shift(v * flicker, exact.BITS)
    level = np.clip(exact.round_shift(v, FP), 0, 511)
    noise = exact.round_shift(exact.irwin_hall_noise(rng, v.shape, 1 << FP) * _shot_noise_scale()[level], FP)
    return exact.to_uint8(v + noise, FP)


def apply_fingerprint(frames: np.ndarray, family: str, seed: int) -> np.ndarray:
    """uint8 T×H×W×3 → uint8, deterministic in (family, seed)."""
    if family == "upsampler":
        return _upsampler(frames)
    if family == "smoother":
        return _smoother(frames)
    if family == "grainy":
        return _grainy(frames)
    if family == "camera":
        return _camera(frames, seed)
    raise ValueError(f"unknown synthetic family {family!r}; expected one of {FAMILIES}")
