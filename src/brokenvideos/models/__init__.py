"""Localizers: clip of frames in, per-frame artifact logits out.

``build_model(arch, **cfg)`` is the factory; each architecture is one module and one line in ARCHS.
"""

from __future__ import annotations

import importlib

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
