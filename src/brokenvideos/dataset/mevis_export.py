"""`brokenvideos export-mevis`: one split of the dataset in the MeViS layout (io/mevis.py), so
SAMWISE, GLUS and VideoLISA fine-tune and predict on it with their own scripts, unchanged.

Every video carries the paper's two expressions (BrokenVideos 4.1): the artifact prompt, whose
mask is the union of the video's artifact instances (empty for a normal video), and the normal
prompt, whose mask is the complement of it when ``evaluate.normal_target`` is ``full`` (a normal
video's whole frame, as the paper labels them) and empty otherwise, matching how ``evaluate``
scores normal videos. The folder is built under a temporary name and swapped in whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from brokenvideos.annotate.export import encode_coco_rle
from brokenvideos.config import load_config
from brokenvideos.dataset.splits import SPLITS, split_videos
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io import mevis
from brokenvideos.io.atomic import atomic_dir
from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.video import read_video
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)
GLUS_MIN_FRAMES = 5  # GLUS skips videos of fewer than 4 frames and its inference needs more than 4


def frame_rles(binary: np.ndarray) -> list:
    """One RLE (or null) per frame of a T×H×W boolean volume, by the annotation exporter."""
    return encode_coco_rle(binary.astype(np.uint8), {1: "region"})["instances"][0]["segmentations"]


def expression_masks(artifact: np.ndarray, normal_target: str) -> dict[str, np.ndarray]:
    normal = ~artifact if normal_target == "full" else np.zeros_like(artifact)
    return {"artifact": artifact, "normal": normal}


def export_split(cfg: dict, split: str, out) -> dict:
    """Write ``out`` (JPEGImages, meta_expressions.json, mask_dict.json); returns the meta document."""
    if split not in SPLITS:
        raise BrokenVideosError(f"export-mevis: --split must be one of {SPLITS}, got {split!r}")
    paths = ResultPaths(cfg["results"])
    rows = split_videos(paths.videos_table, paths.splits_table, split)
    if rows.empty:
        raise BrokenVideosError(f"{paths.splits_table}: no broken or normal videos in split {split!r}")
    normal_target = cfg["evaluate"]["normal_target"]
    meta, mask_dict = {}, {}
    short = []
    with atomic_dir(out) as tmp:
        for i, row in enumerate(tqdm(rows.to_dict("records"), desc=f"export-mevis {split}", unit="video")):
            frames = read_video(row["path"])
            if len(frames) != row["num_frames"]:
                raise InputError(row["path"], f"decodes to {len(frames)} frames, the manifest says {row['num_frames']}")
            artifact = read_video_masks(row["mask_dir"], row["num_frames"], (row["height"], row["width"])) > 0
            video = row["video_id"]
            names = [mevis.frame_stem(t) for t in range(len(frames))]
            folder = tmp / mevis.JPEG_DIR / video
            folder.mkdir(parents=True)
            for name, frame in zip(names, frames):
                mevis.write_jpeg(folder / f"{name}.jpg", frame)
            expressions = {}
            for k, (exp, binary) in enumerate(expression_masks(artifact, normal_target).items()):
                aid = mevis.anno_id(i, exp)
                expressions[mevis.EXP_IDS[exp]] = {"exp": mevis.EXPRESSIONS[exp], "obj_id": [k], "anno_id": [aid]}
                mask_dict[str(aid)] = frame_rles(binary)
            meta[video] = {"expressions": expressions, "frames": names}
            if len(frames) < GLUS_MIN_FRAMES:
                short.append(video)
        doc = {"videos": meta}
        mevis.write_compact_json(tmp / mevis.META_FILE, doc)
        mevis.write_compact_json(tmp / mevis.MASK_FILE, mask_dict)
    if short:
        log.warning("%d videos have fewer than %d frames; GLUS skips or cannot run them: %s",
                    len(short), GLUS_MIN_FRAMES, ", ".join(short[:5]))
    log.info("exported %d videos of split %s to %s (normal expression: %s)", len(meta), split, out,
             "complement" if normal_target == "full" else "empty")
    return doc


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--out", required=True, help="the split folder to write (e.g. mevis/train or mevis/valid)")


def run(args) -> int:
    cfg = load_config(args.config)
    doc = export_split(cfg, args.split, Path(args.out))
    print(f"wrote {args.out}: {len(doc['videos'])} videos, {len(mevis.EXPRESSIONS)} expressions each")
    return 0
