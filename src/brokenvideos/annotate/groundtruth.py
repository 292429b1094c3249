"""`groundtruth`: the masks the generator emitted itself (synthetic backend: exact by construction)."""

from __future__ import annotations

from pathlib import Path

from brokenvideos.annotate.base import Annotation, Annotator
from brokenvideos.errors import InputError
from brokenvideos.io.masks import read_instances, read_video_masks


class GroundTruthAnnotator(Annotator):
    method = "groundtruth"

    def annotate(self, video: dict) -> Annotation:
        src = video.get("generated_mask_dir") or ""
        if not src or not Path(src).is_dir():
            raise InputError(video["path"], "no generator-emitted masks for this video: "
                             "set annotate.method to sam2 or import in the config")
        masks = read_video_masks(src, video["num_frames"], (video["height"], video["width"]))
        return Annotation(masks, read_instances(src))
