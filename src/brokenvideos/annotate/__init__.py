"""Annotators turn a video (and what is known about it) into DAVIS masks.

A method is one module and one line in ``METHODS``; nothing downstream depends on which ran.
"""

from __future__ import annotations

import importlib

from brokenvideos.annotate.base import Annotation, Annotator

METHODS = {
    "groundtruth": "brokenvideos.annotate.groundtruth:GroundTruthAnnotator",
    "import": "brokenvideos.annotate.imported:ImportAnnotator",
    "sam2": "brokenvideos.annotate.sam2_annotator:Sam2Annotator",
}


def build_annotator(annotate_cfg: dict, results: str) -> Annotator:
    module, cls = METHODS[annotate_cfg["method"]].split(":")
    return getattr(importlib.import_module(module), cls)(annotate_cfg, results)


__all__ = ["METHODS", "Annotation", "Annotator", "build_annotator"]
