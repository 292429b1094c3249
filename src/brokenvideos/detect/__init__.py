"""Detection: is this video generated? (He et al., 2024; Sora artifact labels, 2025).

A detector is one module and one line in DETECTORS (registered name -> "module:Class"). Every
detector is self-describing: ``save_pretrained(dir)`` writes ``config.json`` (its registered name and
constructor kwargs) and its weights; ``load_detector(dir)`` rebuilds it from that alone.
"""

from __future__ import annotations

import importlib

from brokenvideos.errors import BrokenVideosError

DETECTORS: dict[str, str] = {
    "temporal_defect": "brokenvideos.detect.temporal_defect:TemporalDefectDetector",
    "cnnspot": "brokenvideos.detect.frame_baselines:CNNSpot",
    "npr": "brokenvideos.detect.frame_baselines:NPR",
    "i3d": "brokenvideos.detect.video3d:I3D",
    "i3d_res": "brokenvideos.detect.video3d:I3DRes",
    "s3d": "brokenvideos.detect.video3d:S3D",
    "s3d_res": "brokenvideos.detect.video3d:S3DRes",
}


def detector_class(name: str):
    if name not in DETECTORS:
        raise BrokenVideosError(f"unknown detector {name!r}; known: {sorted(DETECTORS)}")
    module, cls = DETECTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_detector(name: str, **kwargs):
    return detector_class(name)(**kwargs)


def load_detector(directory):
    """Rebuild a detector from a ``save_pretrained`` directory (name and kwargs from its config.json)."""
    from brokenvideos.detect.base import read_config

    cfg = read_config(directory)
    return detector_class(cfg["name"]).from_pretrained(directory)
