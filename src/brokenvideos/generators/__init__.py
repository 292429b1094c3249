"""Video generators. A backend is one module and one line in ``BACKENDS``."""

from __future__ import annotations

import importlib

from brokenvideos.generators.base import GeneratedVideo, VideoGenerator

BACKENDS = {
    "synthetic": "brokenvideos.generators.synthetic.generator:SyntheticGenerator",
    "diffusers": "brokenvideos.generators.diffusers_backend:DiffusersGenerator",
}


def build_generator(gen_cfg: dict, video_cfg: dict, run_seed: int) -> VideoGenerator:
    module, cls = BACKENDS[gen_cfg["backend"]].split(":")
    return getattr(importlib.import_module(module), cls)(gen_cfg, video_cfg, run_seed)


__all__ = ["BACKENDS", "GeneratedVideo", "VideoGenerator", "build_generator"]
