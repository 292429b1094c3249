"""`brokenvideos annotate`: DAVIS masks for every video of one shard manifest.

Masks land in ``<results>/masks/<video_id>/`` as one atomic directory swap, then their exports,
then (last) an ``annotation.json`` saying who made them from which video bytes; a re-run skips
videos whose record says the same method made them from the same bytes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from brokenvideos.annotate import build_annotator
from brokenvideos.config import config_digest, load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import sweep_temporaries, write_json
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.io.video import sha256_file
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def _is_current(mask_dir, provenance: dict) -> bool:
    f = mask_dir / "annotation.json"
    try:
        return f.exists() and json.loads(f.read_text()) == provenance
    except json.JSONDecodeError:
        return False


EXPORTS = ("overlay", "coco_rle")


def export_annotation(video: dict, ann, mask_dir, exports) -> None:
    """Beside the PNGs: an overlay video for review, COCO RLE for other tools (BrokenVideos 3.2.1
    exports visualization videos of its SAM2 masks for checking)."""
    from brokenvideos.annotate.export import write_coco_rle, write_overlay

    if "overlay" in exports:
        write_overlay(video["path"], ann.masks, ann.instances, mask_dir / "overlay.mp4", fps=video.get("fps"))
    if "coco_rle" in exports:
        write_coco_rle(ann.masks, ann.instances, mask_dir / "rle.json")


def annotate_manifest(cfg: dict, videos_path, out_path) -> pd.DataFrame:
    paths = ResultPaths(cfg["results"])
    videos = read_table(videos_path, kind="videos")
    annotator = build_annotator(cfg["annotate"], cfg["results"])
    sweep_temporaries(paths.masks_root, videos.video_id)  # this shard's interrupted writes
    exports = cfg["annotate"].get("export", list(EXPORTS))
    digest = config_digest(cfg["annotate"])
    prompts_file = cfg["annotate"].get("sam2", {}).get("prompts_file")
    if prompts_file and Path(prompts_file).exists():  # edited clicks must re-annotate
        digest = config_digest([digest, sha256_file(prompts_file)])
    rows = []
    for video in tqdm(videos.to_dict("records"), desc=f"annotate {annotator.method}", unit="video"):
        row = {"video_id": video["video_id"], "mask_dir": "", "num_instances": 0,
               "annotator": annotator.method, "status": "ok", "error": ""}
        if video.get("status", "ok") != "ok":
            row.update(status="skipped", error="generation failed")
            rows.append(row)
            continue
        mask_dir = paths.masks(video["video_id"])
        provenance = {"annotator": annotator.method, "config": digest, "video_sha256": video["sha256"]}
        try:
            if _is_current(mask_dir, provenance):
                instances = json.loads((mask_dir / "instances.json").read_text())
            else:
                ann = annotator.annotate(video)
                expected = (video["num_frames"], video["height"], video["width"])
                if ann.masks.shape != expected:
                    raise BrokenVideosError(f"{video['path']}: annotator returned masks {ann.masks.shape}, "
                                            f"video is {expected}")
                write_video_masks(mask_dir, ann.masks, ann.instances)
                instances = ann.instances
                export_annotation(video, ann, mask_dir, exports)
                # the record last: a job killed before it leaves masks that a re-run redoes
                write_json(mask_dir / "annotation.json", provenance)
            row.update(mask_dir=str(mask_dir), num_instances=len(instances))
        except BrokenVideosError as exc:
            # One bad video is recorded and reported; the rest of the shard is still annotated.
            log.error("%s", exc)
            row.update(status="error", error=str(exc))
        rows.append(row)
    df = pd.DataFrame(rows)
    write_table(df, out_path, kind="annotations")
    log.info("wrote %s: %d annotated, %d failed", out_path, (df.status == "ok").sum(), (df.status == "error").sum())
    return df


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--videos", required=True, help="a shard manifest (videos contract)")
    p.add_argument("--out", required=True, help="annotations manifest to write")


def run(args) -> int:
    cfg = load_config(args.config)
    df = annotate_manifest(cfg, args.videos, args.out)
    return 1 if (df.status == "error").any() else 0
