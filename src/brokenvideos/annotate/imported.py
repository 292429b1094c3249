"""`import`: masks that already exist on disk as ``<import_dir>/<video_id>/<frame>.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brokenvideos.annotate.base import Annotation, Annotator
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.masks import read_instances, read_video_masks


class ImportAnnotator(Annotator):
    method = "import"

    def __init__(self, annotate_cfg, results):
        super().__init__(annotate_cfg, results)
        if not annotate_cfg.get("import_dir"):
            raise BrokenVideosError("config: annotate.import_dir is required when annotate.method is import")
        self.root = Path(annotate_cfg["import_dir"])

    def annotate(self, video: dict) -> Annotation:
        src = self.root / video["video_id"]
        if not src.is_dir() and video["label"] in ("normal", "real"):
            # Normal and real videos need no mask files: all-zero masks by contract.
            return Annotation(np.zeros((video["num_frames"], video["height"], video["width"]), np.uint8), {})
        masks = read_video_masks(src, video["num_frames"], (video["height"], video["width"]))
        instances = read_instances(src) or {int(k): "unknown" for k in np.unique(masks) if k}
        return Annotation(masks, instances)
