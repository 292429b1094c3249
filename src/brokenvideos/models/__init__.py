"""Localizers: clip of frames in, per-frame artifact logits out.

``build_model(arch, **cfg)`` is the factory; each architecture is one module (a
``models.base.Localizer``) and one line in ARCHS, or, outside this package, ``arch: module:Class``.
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
    "lite0_unet": "brokenvideos.models.lite0_unet:Lite0UNet",
    "sam2_artifact": "brokenvideos.models.sam2_artifact:Sam2Artifact",
}


def model_class(arch: str):
    """A registered name, or ``package.module:Class`` for a localizer that lives outside this package
    (it is imported from the Python path, the working directory included)."""
    if arch not in ARCHS and ":" not in arch:
        raise BrokenVideosError(f"unknown localizer arch {arch!r}; known: {sorted(ARCHS)} or module:Class")
    module, cls = ARCHS.get(arch, arch).split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise BrokenVideosError(f"localizer arch {arch!r}: cannot import {module}:{cls} ({exc})") from None


def check_model_arguments(arch: str, cfg: dict) -> None:
    """Each localizer owns its arguments: a name its constructor does not take, or a value of
    another type than its default, is refused with the key named (not a TypeError mid-training)."""
    import inspect

    params = inspect.signature(model_class(arch)).parameters
    for key, value in cfg.items():
        if key not in params:
            raise BrokenVideosError(f"config: model {arch}: unknown argument {key!r}; it takes {sorted(params)}")
        default = params[key].default
        kinds = (int, float) if type(default) is float else (type(default),)
        if default not in (inspect.Parameter.empty, None) and (type(value) not in kinds):
            raise BrokenVideosError(f"config: model {arch}: {key}={value!r} is not a {type(default).__name__}")


def build_model(arch: str, **cfg):
    check_model_arguments(arch, cfg)
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
