"""Artifact injectors for the taxonomy subcategories a procedural render can show.

Two kinds: subject-level ones are scene ``Modifier``s (the subject vanishes, jumps, drifts in colour
or size, swaps identity, gets uncanny eyes); region-level ones edit pixels inside a region that moves
with the camera. Either way the generator derives the mask from the pixels that actually changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from brokenvideos.generators.synthetic import exact
from brokenvideos.generators.synthetic.scene import Modifier, SceneSpec

# subcategory -> injectors that render it (subject-level names are Modifier kinds)
INJECTORS: dict[str, list[str]] = {
    "visual_breakdown": ["fragment", "local_blur", "texture_noise"],
    "motion_anomaly": ["jump", "jitter"],
    "symbol_confusion": ["glyphs"],
    "logical_disjunction": ["vanish", "identity_swap"],
    "uncanny_valley": ["eye_flicker"],
    "perceptual_overload": ["overload"],
    "style_inconsistency": ["posterize"],
    "attribute_shift": ["colour_drift", "scale_drift"],
}
SUBJECT_LEVEL = {"jump", "vanish", "identity_swap", "eye_flicker", "colour_drift", "scale_drift"}


@dataclass
class RegionArtifact:
    """A region-level artifact: an ellipse fixed in the scene (it pans with the camera)."""

    kind: str
    cx: float
    cy: float
    rx: float
    ry: float
    t0: int
    t1: int
    seed: int

    def mask(self, spec: SceneSpec, t: int) -> np.ndarray:
        fx, fy = spec.camera_offset(t)
        fx0, fy0 = spec.camera_offset(self.t0)
        # The background is 1.6× the frame: the camera moves 0.6·W per unit of offset.
        dx = -(fx - fx0) * 0.6 * spec.width
        dy = -(fy - fy0) * 0.6 * spec.height
        m = np.zeros((spec.height, spec.width), np.uint8)
        cv2.ellipse(m, (int(round(self.cx + dx)), int(round(self.cy + dy))),
                    (max(2, int(self.rx)), max(2, int(self.ry))), 0, 0, 360, 1, -1)
        return m.astype(bool)


def sample_window(rng: np.random.Generator, num_frames: int) -> tuple[int, int]:
    length = int(rng.integers(max(2, num_frames // 4), num_frames + 1))
    t0 = int(rng.integers(0, num_frames - length + 1))
    return t0, t0 + length - 1


def plan_subject_artifact(kind, subject_index, spec, rng) -> Modifier:
    t0, t1 = sample_window(rng, spec.num_frames)
    params = {}
    if kind == "jump":
        params = {"dx": float(rng.choice([-1, 1]) * spec.width * rng.uniform(0.2, 0.35)),
                  "dy": float(rng.uniform(-0.15, 0.15) * spec.height)}
    elif kind == "identity_swap":
        current = spec.subjects[subject_index].drawer
        params = {"drawer": [d for d in ("humanoid", "quadruped", "vehicle") if d != current][int(rng.integers(2))],
                  "colour": tuple(float(c) for c in rng.uniform(30, 230, 3))}
    return Modifier(kind, subject_index, t0, t1, params)


def plan_region_artifact(kind, spec, rng) -> RegionArtifact:
    t0, t1 = sample_window(rng, spec.num_frames)
    rx = spec.width * rng.uniform(0.08, 0.2)
    ry = spec.height * rng.uniform(0.1, 0.25)
    return RegionArtifact(kind, float(rng.uniform(rx, spec.width - rx)), float(rng.uniform(ry, spec.height - ry)),
                          float(rx), float(ry), t0, t1, int(rng.integers(2**31)))


def apply_region_artifact(frames: np.ndarray, art: RegionArtifact, spec: SceneSpec) -> np.ndarray:
    """Return a copy of ``frames`` (uint8) with the artifact drawn on its active frames."""
    out = frames.copy()
    rng = np.random.default_rng(art.seed)
    for t in range(art.t0, art.t1 + 1):
        region = art.mask(spec, t)
        if not region.any():
            continue
        edited = _INJECT[art.kind](frames[t], region, rng, t - art.t0)
        out[t][region] = edited[region]
    return out


def inject_fragment(img, region, rng, k):
    """Visual breakdown: the region is cut into blocks that are shuffled and re-lit."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    b = int(rng.integers(3, 7))
    patch = img[y0:y1, x0:x1].astype(np.int16)
    h, w = (patch.shape[0] // b) * b, (patch.shape[1] // b) * b
    out = img.astype(np.int16)
    if h and w:
        blocks = patch[:h, :w].reshape(h // b, b, w // b, b, 3).transpose(0, 2, 1, 3, 4).reshape(-1, b, b, 3)
        blocks = blocks[rng.permutation(len(blocks))] + rng.integers(-25, 26, (len(blocks), 1, 1, 3))
        out[y0:y0 + h, x0:x0 + w] = blocks.reshape(h // b, w // b, b, b, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)
    out[region] = np.where(out[region] == img[region], 255 - out[region], out[region])
    return np.clip(out, 0, 255).astype(np.uint8)


def inject_local_blur(img, region, rng, k):
    """Local blur: strong defocus plus lost contrast, as generators smear fine detail."""
    blurred = exact.round_shift(exact.gaussian_blur(img, 3.0), 2 * exact.BITS)
    # 0.4·mean + 0.6·blurred + 18, with the region's mean kept as the exact fraction sum / count
    total, count = blurred[region].sum(axis=0), int(region.sum())
    return np.clip((4 * total + 6 * count * blurred + 180 * count) // (10 * count), 0, 255).astype(np.uint8)


def inject_texture_noise(img, region, rng, k):
    """Texture noise: high-frequency speckle boiling from frame to frame."""
    return np.clip(img.astype(np.int16) + rng.integers(-45, 46, img.shape), 0, 255).astype(np.uint8)


def inject_jitter(img, region, rng, k):
    """Motion anomaly: the region's content jerks to a new offset every frame."""
    dx, dy = rng.integers(4, 9, 2) * rng.choice([-1, 1], 2)
    shifted = np.roll(img, (int(dy), int(dx)), axis=(0, 1)).astype(np.int16)
    return np.clip(shifted + 20, 0, 255).astype(np.uint8)


def inject_glyphs(img, region, rng, k):
    """Symbol confusion: a sign whose garbled lettering changes every frame."""
    out = img.copy()
    ys, xs = np.nonzero(region)
    out[region] = (235, 225, 200)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ#%&@?!<>"
    x, y = int(xs.min()) + 1, int(ys.min()) + max(6, int((ys.max() - ys.min()) * 0.45))
    scale = max(0.25, (ys.max() - ys.min()) / 60)
    text = "".join(alphabet[i] for i in rng.integers(len(alphabet), size=6))
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 20, 60), 1, cv2.LINE_AA)
    cv2.putText(out, text[::-1], (x, y + int(14 * scale) + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (120, 20, 20), 1, cv2.LINE_AA)
    return out


def inject_overload(img, region, rng, k):
    """Perceptual overload: dense meaningless fragments, re-drawn every frame."""
    out = img.copy()
    ys, xs = np.nonzero(region)
    for _ in range(int(rng.integers(40, 80))):
        i = int(rng.integers(len(xs)))
        p0 = (int(xs[i]), int(ys[i]))
        p1 = (p0[0] + int(rng.integers(-6, 7)), p0[1] + int(rng.integers(-6, 7)))
        cv2.line(out, p0, p1, tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(1, 3)))
    return out


def inject_posterize(img, region, rng, k):
    """Style inconsistency: a patch flips to flat cartoon colours with inked edges."""
    levels = 4
    q = (img // (256 // levels)) * (256 // levels) + 256 // (2 * levels)
    edges = cv2.Canny(exact.luma(img), 60, 140) > 0  # Canny on uint8 is integer maths
    q[edges] = 10
    return q.astype(np.uint8)


_INJECT = {
    "fragment": inject_fragment,
    "local_blur": inject_local_blur,
    "texture_noise": inject_texture_noise,
    "jitter": inject_jitter,
    "glyphs": inject_glyphs,
    "overload": inject_overload,
    "posterize": inject_posterize,
}
