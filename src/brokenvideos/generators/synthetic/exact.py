"""Image maths whose results are the same bytes on every processor and at every thread count.

Float kernels (OpenCV's SIMD paths, BLAS, numpy's vectorised reductions) round differently by CPU
and by how work is split across threads; one flipped grey level then changes the H.264 stream.
Here every filter is separable with integer weights (``BITS`` fractional bits per axis) applied with
int64 multiply-adds, which are exact in any order. Weights are computed in float64 from +, −, ×, ÷
and floor, which IEEE-754 rounds identically everywhere, then rounded to integers that sum exactly
to ``ONE``. Rounding back to grey levels is explicit (round half up).
"""

from __future__ import annotations

import math

import numpy as np

BITS = 12
ONE = 1 << BITS


def round_shift(v: np.ndarray, shift: int) -> np.ndarray:
    """v / 2**shift rounded half up, as int64 (exact for negative values too)."""
    if shift == 0:
        return v.astype(np.int64)
    return (v.astype(np.int64) + (1 << (shift - 1))) >> shift


def to_uint8(v: np.ndarray, shift: int = 0) -> np.ndarray:
    return np.clip(round_shift(v, shift), 0, 255).astype(np.uint8)


def _integer_weights(w: np.ndarray) -> np.ndarray:
    """Rows of float weights → int64 rows summing exactly to ONE (the remainder goes to the largest)."""
    w = w / np.array([[math.fsum(row)] for row in w])  # fsum: correctly rounded, order-free
    q = np.rint(w * ONE).astype(np.int64)
    q[np.arange(len(q)), np.argmax(w, axis=1)] += ONE - q.sum(axis=1)
    return q


def reflect(i: np.ndarray, n: int) -> np.ndarray:
    """Indices mirrored at the borders with the edge repeated: fedcba|abcdef|fedcba."""
    m = np.mod(i, 2 * n)
    return np.where(m >= n, 2 * n - 1 - m, m)


def reflect101(i: np.ndarray, n: int) -> np.ndarray:
    """Indices mirrored about the edge pixel: dcb|abcd|cba."""
    if n == 1:
        return np.zeros_like(i)
    m = np.mod(i, 2 * n - 2)
    return np.where(m >= n, 2 * n - 2 - m, m)


def filter_axis(a: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """out[j] = Σ_k w[j, k] · a[idx[j, k]] along ``axis``; int64, scaled by ONE."""
    idx, w = taps
    a = np.moveaxis(np.asarray(a, dtype=np.int64), axis, 0)
    out = np.zeros((idx.shape[0],) + a.shape[1:], np.int64)
    shape = (-1,) + (1,) * (a.ndim - 1)
    for k in range(idx.shape[1]):
        out += w[:, k].reshape(shape) * a[idx[:, k]]
    return np.moveaxis(out, 0, axis)


def area_taps(n_in: int, n_out: int):
    """Each output pixel averages the input pixels under its footprint, weighted by overlap."""
    scale = n_in / n_out
    lo = np.arange(n_out) * scale
    hi = lo + scale
    first = np.floor(lo).astype(np.int64)
    ntaps = int(math.ceil(scale)) + 1
    idx = first[:, None] + np.arange(ntaps)[None, :]
    overlap = np.minimum(idx + 1, hi[:, None]) - np.maximum(idx, lo[:, None])
    w = np.clip(overlap, 0.0, None)
    return np.clip(idx, 0, n_in - 1), _integer_weights(w)


def cubic_taps(n_in: int, n_out: int, a: float = -0.75):
    """Bicubic (Keys, a = −0.75 as OpenCV's INTER_CUBIC) interpolation: overshoots at edges."""
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(centre).astype(np.int64)
    idx = base[:, None] + np.arange(-1, 3)[None, :]
    d = np.abs(centre[:, None] - idx)
    w = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                 np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))
    return np.clip(idx, 0, n_in - 1), _integer_weights(w)


def shift_taps(n_out: int, offset: float, n_in: int):
    """Bilinear sampling at j + offset, mirrored (edge repeated) outside the input."""
    base = math.floor(offset)
    frac = offset - base
    w1 = int(round(frac * ONE))
    idx = np.arange(n_out)[:, None] + base + np.arange(2)[None, :]
    w = np.tile(np.array([[ONE - w1, w1]], np.int64), (n_out, 1))
    return reflect(idx, n_in), w


def gaussian_taps(n: int, sigma: float):
    """Gaussian of ``sigma`` (radius ⌈3σ⌉), borders mirrored about the edge pixel."""
    r = max(1, int(math.ceil(3 * sigma)))
    kernel = np.array([math.exp(-(k * k) / (2 * sigma * sigma)) for k in range(-r, r + 1)])
    idx = np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :]
    return reflect101(idx, n), _integer_weights(np.tile(kernel, (n, 1)))


def resize(img: np.ndarray, width: int, height: int, kind: str = "area") -> np.ndarray:
    """(…, H, W, C) integers → (…, height, width, C) int64 scaled by ONE² (round with 2·BITS)."""
    taps = {"area": area_taps, "cubic": cubic_taps}[kind]
    h_axis, w_axis = img.ndim - 3, img.ndim - 2
    out = filter_axis(img, taps(img.shape[w_axis], width), w_axis)
    return filter_axis(out, taps(img.shape[h_axis], height), h_axis)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """(…, H, W, C) integers → int64 scaled by ONE²."""
    h_axis, w_axis = img.ndim - 3, img.ndim - 2
    out = filter_axis(img, gaussian_taps(img.shape[w_axis], sigma), w_axis)
    return filter_axis(out, gaussian_taps(img.shape[h_axis], sigma), h_axis)


def translate(img: np.ndarray, ox: float, oy: float, width: int, height: int) -> np.ndarray:
    """Crop of ``img`` (H, W, C) whose top-left is at (ox, oy), bilinear; uint8."""
    out = filter_axis(img, shift_taps(width, ox, img.shape[1]), 1)
    out = filter_axis(out, shift_taps(height, oy, img.shape[0]), 0)
    return to_uint8(out, 2 * BITS)


def irwin_hall_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Integer, approximately Gaussian noise of standard deviation ``sigma``: a sum of 4 uniform
    integers on [−a, a] (variance 4·a(a+1)/3). Integer draws are exact on every machine."""
    a = max(1, int(round((math.sqrt(1 + 3 * sigma * sigma) - 1) / 2)))
    return rng.integers(-a, a + 1, size=(4,) + tuple(shape)).sum(axis=0)


def luma(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 grey of an RGB uint8 image in 14-bit fixed point (the coefficients OpenCV uses)."""
    x = img.astype(np.int64)
    return ((4899 * x[..., 0] + 9617 * x[..., 1] + 1868 * x[..., 2] + (1 << 13)) >> 14).astype(np.uint8)
