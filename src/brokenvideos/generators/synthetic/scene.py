"""Procedural scenes: a natural texture under a moving camera, articulated subjects on top.

Subject-level artifacts (vanishing, jumps, colour drift, …) are *modifiers* of this render, so the
same spec rendered with and without a modifier differs exactly where the artifact is.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from brokenvideos.generators.synthetic import exact

# Textures that ship inside scikit-image (no download): scene -> candidate backgrounds.
SCENE_TEXTURES = {
    "human": ["brick", "grass", "motorcycle_left", "coffee"],
    "fauna_flora": ["grass", "gravel", "chelsea"],
    "robotic": ["gravel", "chessboard_RGB", "camera"],
    "urban": ["brick", "motorcycle_left", "page"],
    "virtual": ["hubble_deep_field", "color", "logo"],
    "natural_landscape": ["rocket", "grass", "gravel", "moon"],
    "vehicle": ["motorcycle_left", "gravel", "brick"],
}
# Greyscale textures get a scene tint so scenes differ in colour statistics.
SCENE_TINT = {
    "human": (1.0, 0.93, 0.85), "fauna_flora": (0.8, 1.0, 0.7), "robotic": (0.85, 0.9, 1.0),
    "urban": (1.0, 0.95, 0.9), "virtual": (0.8, 0.7, 1.0), "natural_landscape": (0.95, 1.0, 0.9),
    "vehicle": (0.9, 0.9, 0.95),
}
SCENE_DRAWERS = {
    "human": ["humanoid"], "fauna_flora": ["quadruped", "humanoid"], "robotic": ["humanoid", "vehicle"],
    "urban": ["humanoid", "vehicle"], "virtual": ["humanoid", "quadruped"],
    "natural_landscape": ["quadruped", "vehicle"], "vehicle": ["vehicle"],
}


@functools.lru_cache(maxsize=32)
def load_texture(name: str) -> np.ndarray:
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    path = next(p for p in (folder / f"{name}.png", folder / f"{name}.jpg") if p.exists())
    with Image.open(path) as im:  # PIL, not cv2: libpng warns about one file's ICC profile
        img = np.array(im.convert("RGB"))
    img.setflags(write=False)
    return img


@dataclass
class Subject:
    drawer: str
    colour: tuple[float, float, float]  # RGB 0..255
    x0: float
    y0: float
    vx: float
    vy: float
    scale: float
    phase: float
    omega: float

    def position(self, t: int) -> tuple[float, float]:
        return self.x0 + self.vx * t, self.y0 + self.vy * t + 0.04 * self.scale * math.sin(self.phase + self.omega * t)


@dataclass
class Modifier:
    """A subject-level artifact active on frames [t0, t1]."""

    kind: str  # vanish | jump | identity_swap | colour_drift | scale_drift | eye_flicker
    subject: int
    t0: int
    t1: int
    params: dict = field(default_factory=dict)

    def active(self, t: int) -> bool:
        return self.t0 <= t <= self.t1


@dataclass
class SceneSpec:
    width: int
    height: int
    num_frames: int
    texture: str
    tint: tuple[float, float, float]
    cam_start: tuple[float, float]
    cam_velocity: tuple[float, float]
    subjects: list[Subject]

    def camera_offset(self, t: int) -> tuple[float, float]:
        return self.cam_start[0] + self.cam_velocity[0] * t, self.cam_start[1] + self.cam_velocity[1] * t


def sample_scene(rng: np.random.Generator, scene: str, width: int, height: int, num_frames: int,
                 min_subjects: int) -> SceneSpec:
    texture = SCENE_TEXTURES[scene][rng.integers(len(SCENE_TEXTURES[scene]))]
    n_subjects = max(min_subjects, int(rng.integers(1, 3)))
    subjects = []
    for _ in range(n_subjects):
        drawers = SCENE_DRAWERS[scene]
        hue = rng.random()
        rgb = colorsys.hsv_to_rgb(hue, 0.55 + 0.4 * rng.random(), 0.55 + 0.45 * rng.random())
        scale = height * (0.22 + 0.18 * rng.random())
        speed = width * (0.004 + 0.012 * rng.random()) * (1 if rng.random() < 0.5 else -1)
        subjects.append(Subject(
            drawer=drawers[rng.integers(len(drawers))],
            colour=tuple(float(c) * 255 for c in rgb),
            x0=width * (0.15 + 0.7 * rng.random()),
            y0=height * (0.35 + 0.4 * rng.random()),
            vx=speed, vy=height * 0.003 * rng.standard_normal(),
            scale=scale, phase=2 * math.pi * rng.random(), omega=0.5 + 0.6 * rng.random(),
        ))
    cam_speed = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-0.6, 0.6)])
    return SceneSpec(width, height, num_frames, texture, SCENE_TINT[scene],
                     cam_start=(float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.1, 0.3))),
                     cam_velocity=(float(cam_speed[0]), float(cam_speed[1])), subjects=subjects)


@functools.lru_cache(maxsize=16)
def _background(texture: str, tint: tuple[float, float, float], width: int, height: int) -> np.ndarray:
    """The texture area-resized to 1.6× the frame and tinted (exact integer maths); the camera pans
    inside it."""
    big = exact.resize(load_texture(texture), int(width * 1.6), int(height * 1.6), "area")
    tint_fp = np.array([int(round(c * exact.ONE)) for c in tint], np.int64)
    big = exact.to_uint8(exact.round_shift(big, 2 * exact.BITS) * tint_fp, exact.BITS)
    big.setflags(write=False)
    return big


def _camera_crop(big: np.ndarray, spec: SceneSpec, t: int) -> np.ndarray:
    fx, fy = spec.camera_offset(t)
    return exact.translate(big, fx * (big.shape[1] - spec.width), fy * (big.shape[0] - spec.height),
                           spec.width, spec.height)


def _pt(x, y):
    return int(round(x)), int(round(y))


def _draw_eyes(img, hx, hy, r, flicker: bool, t: int):
    dark = (20, 20, 20)
    e = max(1, int(round(r * 0.25)))
    if not flicker:
        cv2.circle(img, _pt(hx - r * 0.4, hy - r * 0.1), e, dark, -1, cv2.LINE_AA)
        cv2.circle(img, _pt(hx + r * 0.4, hy - r * 0.1), e, dark, -1, cv2.LINE_AA)
    else:  # asynchronous, drifting eyes and an extra one: the uncanny-valley cue
        cv2.circle(img, _pt(hx - r * 0.4, hy - r * (0.1 + 0.3 * (t % 2))), e * 2, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(img, _pt(hx - r * 0.4, hy - r * (0.1 + 0.3 * (t % 2))), e, dark, -1, cv2.LINE_AA)
        cv2.circle(img, _pt(hx + r * 0.5, hy + r * 0.3), e, (200, 20, 20), -1, cv2.LINE_AA)
        cv2.circle(img, _pt(hx, hy - r * 0.55), e, dark, -1, cv2.LINE_AA)


def _draw_subject(img, drawer: str, x, y, s, colour, phase, flicker, t):
    c = tuple(int(v) for v in colour)
    th = max(1, int(round(s * 0.09)))
    if drawer == "humanoid":
        hip = (x, y + 0.1 * s)
        neck = (x, y - 0.25 * s)
        swing = 0.5 * math.sin(phase)
        for sign in (-1, 1):  # legs and arms swing in opposition: articulated gait
            a = sign * swing
            cv2.line(img, _pt(*hip), _pt(hip[0] + 0.35 * s * math.sin(a), hip[1] + 0.4 * s * math.cos(a)), c, th, cv2.LINE_AA)
            cv2.line(img, _pt(*neck), _pt(neck[0] - 0.3 * s * math.sin(a), neck[1] + 0.3 * s * math.cos(a)), c, th, cv2.LINE_AA)
        cv2.line(img, _pt(*hip), _pt(*neck), c, th + 2, cv2.LINE_AA)
        r = 0.14 * s
        cv2.circle(img, _pt(neck[0], neck[1] - r), int(round(r)), c, -1, cv2.LINE_AA)
        _draw_eyes(img, neck[0], neck[1] - r, r, flicker, t)
    elif drawer == "quadruped":
        cv2.ellipse(img, _pt(x, y), _pt(0.35 * s, 0.15 * s), 0, 0, 360, c, -1, cv2.LINE_AA)
        for i, dx in enumerate((-0.25, -0.1, 0.1, 0.25)):
            a = 0.4 * math.sin(phase + math.pi * (i % 2))
            cv2.line(img, _pt(x + dx * s, y + 0.1 * s), _pt(x + dx * s + 0.15 * s * math.sin(a), y + 0.4 * s), c, th, cv2.LINE_AA)
        r = 0.12 * s
        hx, hy = x + 0.4 * s, y - 0.15 * s
        cv2.circle(img, _pt(hx, hy), int(round(r)), c, -1, cv2.LINE_AA)
        _draw_eyes(img, hx, hy, r, flicker, t)
    else:  # vehicle: body, cabin and turning wheels
        cv2.rectangle(img, _pt(x - 0.4 * s, y - 0.1 * s), _pt(x + 0.4 * s, y + 0.12 * s), c, -1, cv2.LINE_AA)
        cv2.rectangle(img, _pt(x - 0.2 * s, y - 0.28 * s), _pt(x + 0.15 * s, y - 0.1 * s), c, -1, cv2.LINE_AA)
        for dx in (-0.25, 0.25):
            cx, cy, r = x + dx * s, y + 0.14 * s, 0.09 * s
            cv2.circle(img, _pt(cx, cy), max(1, int(round(r))), (30, 30, 30), -1, cv2.LINE_AA)
            cv2.line(img, _pt(cx, cy), _pt(cx + r * math.cos(phase), cy + r * math.sin(phase)), (200, 200, 200), 1, cv2.LINE_AA)
        _draw_eyes(img, x + 0.3 * s, y - 0.02 * s, 0.08 * s, flicker, t)


def render_scene(spec: SceneSpec, modifiers: list[Modifier] = ()) -> np.ndarray:
    """Render T×H×W×3 uint8 frames; ``modifiers`` alter subjects on their active frames."""
    big = _background(spec.texture, tuple(spec.tint), spec.width, spec.height)
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), np.uint8)
    for t in range(spec.num_frames):
        img = _camera_crop(big, spec, t)
        for i, subj in enumerate(spec.subjects):
            mods = [m for m in modifiers if m.subject == i and m.active(t)]
            kinds = {m.kind: m for m in mods}
            if "vanish" in kinds:
                continue
            x, y = subj.position(t)
            s, colour, drawer = subj.scale, subj.colour, subj.drawer
            if "jump" in kinds:
                x += kinds["jump"].params["dx"]
                y += kinds["jump"].params["dy"]
            if "scale_drift" in kinds:
                s *= 1.0 + 0.45 * math.sin(math.pi * (t - kinds["scale_drift"].t0 + 1) / 3)
            if "colour_drift" in kinds:
                h, sat, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
                k = t - kinds["colour_drift"].t0 + 1
                colour = tuple(255 * c for c in colorsys.hsv_to_rgb((h + 0.17 * k) % 1.0, max(sat, 0.6), max(v, 0.6)))
            if "identity_swap" in kinds:
                drawer = kinds["identity_swap"].params["drawer"]
                colour = kinds["identity_swap"].params["colour"]
            _draw_subject(img, drawer, x, y, s, colour, subj.phase + subj.omega * t,
                          "eye_flicker" in kinds, t)
        frames[t] = img
    return frames
