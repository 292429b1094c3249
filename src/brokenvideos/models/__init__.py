"""Localizers: clip of frames in, per-frame artifact logits out.

``build_model(arch, **cfg)`` is the factory; each architecture is one module and one line in ARCHS.
A saved localizer is a directory that describes itself: ``config.json`` (its ``arch`` and
constructor arguments), its weights, and ``inference.json`` (the clip length and crop it was
trained with, which prediction and calibration must use too). ``load_pretrained(dir)`` needs
nothing else.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from brokenvideos.errors import BrokenVideosError

CONFIG_NAME = "config.json"
INFERENCE_NAME = "inference.json"

ARCHS = {
    "st_unet": "brokenvideos.models.st_unet:SpatioTemporalUNet",
}


def model_class(arch: str):
    if arch not in ARCHS:
        raise KeyError(f"unknown localizer arch {arch!r}; known: {sorted(ARCHS)}")
    module, cls = ARCHS[arch].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(arch: str, **cfg):
    return model_class(arch)(**cfg)


def load_pretrained(directory):
    """The localizer saved in ``directory``, whatever its architecture."""
    path = Path(directory) / CONFIG_NAME
    try:
        arch = json.loads(path.read_text())["arch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError) as exc:
        raise BrokenVideosError(f"{path}: not a saved localizer ({exc.__class__.__name__}: {exc})") from None
    return model_class(arch).from_pretrained(directory)


def save_inference_settings(directory, clip_len: int, crop) -> None:
    from brokenvideos.io.atomic import write_json

    write_json(Path(directory) / INFERENCE_NAME, {"clip_len": int(clip_len), "crop": crop})


def load_inference_settings(directory) -> dict:
    path = Path(directory) / INFERENCE_NAME
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise BrokenVideosError(f"{path}: missing or unreadable ({exc.__class__.__name__}); "
                                "re-run `brokenvideos train` to write it") from None
