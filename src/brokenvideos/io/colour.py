"""RGB ↔ YUV 4:2:0 (BT.601, limited range) in integer fixed point, the same bytes on every CPU.

swscale's conversions take CPU-dependent SIMD paths, and handing rgb24 frames to the encoder made
libx264's output vary from one encode to the next; converting here, exactly, avoids both. H.264
decoding itself is bit-exact by the standard, so decode + ``yuv420p_to_rgb`` is exact too.
"""

from __future__ import annotations

import numpy as np

# BT.601 limited range, 16 fractional bits (65.481/255·2¹⁶ …)
_Y = (16829, 33039, 6416)
_U = (-9714, -19070, 28784)
_V = (28784, -24103, -4681)
_INV = {"y": 76309, "rv": 104597, "gu": -25675, "gv": -53279, "bu": 132201}


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 (even H, W) → (H·3/2)×W uint8 planar Y, U, V, as PyAV's yuv420p ndarray."""
    h, w, _ = rgb.shape
    x = rgb.astype(np.int64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = (((16 << 16) + _Y[0] * r + _Y[1] * g + _Y[2] * b + (1 << 15)) >> 16).clip(16, 235)

    def chroma(c):  # full-resolution values, averaged over each 2×2 block, then rounded
        full = c[0] * r + c[1] * g + c[2] * b
        quad = full[0::2, 0::2] + full[1::2, 0::2] + full[0::2, 1::2] + full[1::2, 1::2]
        return (128 + ((quad + (1 << 17)) >> 18)).clip(16, 240)

    u, v = chroma(_U), chroma(_V)
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)]).astype(np.uint8)


def yuv420p_to_rgb(planes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H·3/2)×W uint8 planar → H×W×3 uint8; chroma repeated over its 2×2 block."""
    y = planes[:height].astype(np.int64) - 16
    u = planes[height:height + height // 4].reshape(height // 2, width // 2).astype(np.int64) - 128
    v = planes[height + height // 4:].reshape(height // 2, width // 2).astype(np.int64) - 128
    u = u.repeat(2, 0).repeat(2, 1)
    v = v.repeat(2, 0).repeat(2, 1)
    yy = _INV["y"] * y + (1 << 15)
    rgb = np.stack([yy + _INV["rv"] * v, yy + _INV["gu"] * u + _INV["gv"] * v, yy + _INV["bu"] * u], axis=-1)
    return np.clip(rgb >> 16, 0, 255).astype(np.uint8)
