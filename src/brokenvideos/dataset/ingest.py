"""`brokenvideos ingest`: an existing folder of videos enters the same videos manifest.

Layouts understood:
- any tree of videos, with an optional labels CSV (columns ``video`` — path relative to the root,
  or its stem — and ``label``; optional ``generator``, ``prompt_id``, ``text``);
- VID-AID-style ``real/`` and ``fake/<generator>/`` folders: a folder named real (or a
  ``real`` path component) gives label ``real`` and generator ``real``;
- BrokenVideos-style masks: ``<masks_dir>/<video stem>/<frame>.png`` (DAVIS palette); a video with
  a non-empty mask is ``broken``, one without is the default label.
Every video is decoded and every mask checked before anything is written.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.masks import read_instances, read_video_masks, write_video_masks
from brokenvideos.io.tables import LABELS, write_table
from brokenvideos.io.video import probe_video, sha256_file
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def _labels_table(path) -> dict[str, dict]:
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str).fillna("")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"cannot read labels CSV ({exc})") from None
    if not {"video", "label"} <= set(df.columns):
        raise InputError(path, f"labels CSV needs columns video,label; has {list(df.columns)}")
    for r in df.itertuples():
        if r.label not in LABELS:
            raise InputError(path, f"row {r.Index + 2}: unknown label {r.label!r} (expected one of {', '.join(LABELS)})")
    return {r["video"]: r for r in df.to_dict("records")}


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def scan(root, name: str, labels_csv=None, masks_dir=None, default_label="normal") -> tuple[pd.DataFrame, dict]:
    """Rows of the videos contract plus the masks to import; raises InputError on the first bad file."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "ingest root is not a directory")
    labels = _labels_table(labels_csv) if labels_csv else {}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not files:
        raise InputError(root, "no video files found")
    rows, masks = [], {}
    for f in tqdm(files, desc=f"ingest {name}", unit="video"):
        rel = f.relative_to(root)
        info = probe_video(f)
        meta = labels.get(str(rel)) or labels.get(f.stem) or {}
        real = "real" in [part.lower() for part in rel.parts[:-1]]
        generator = meta.get("generator") or ("real" if real else (rel.parts[-2] if len(rel.parts) > 1 else name))
        video_id = f"{name}-{_safe_id(str(rel.with_suffix('')))}"
        label = meta.get("label") or ("real" if real else default_label)
        num_instances = 0
        if masks_dir and (Path(masks_dir) / f.stem).is_dir():
            src = Path(masks_dir) / f.stem
            vol = read_video_masks(src, info["num_frames"], (info["height"], info["width"]))
            ids = sorted(set(np.unique(vol).tolist()) - {0})
            instances = read_instances(src) or {k: "unknown" for k in ids}
            masks[video_id] = (vol, instances)
            num_instances = len(ids)
            if ids and not meta.get("label") and not real:
                label = "broken"
        rows.append({
            "video_id": video_id, "generator": generator,
            "prompt_id": meta.get("prompt_id") or f"{name}-{_safe_id(f.stem)}",
            "path": str(f), "label": label, "fps": info["fps"], "num_frames": info["num_frames"],
            "width": info["width"], "height": info["height"], "sha256": sha256_file(f),
            "source": f"ingest:{name}", "text": meta.get("text", ""), "num_instances": num_instances,
        })
    return pd.DataFrame(rows), masks


def ingest(root, name, out, results, labels_csv=None, masks_dir=None, default_label="normal") -> pd.DataFrame:
    df, masks = scan(root, name, labels_csv, masks_dir, default_label)
    for r in df.itertuples():  # every check before the first write
        if r.label == "broken" and r.video_id not in masks:
            raise InputError(r.path, "labelled broken but has no masks")
    paths = ResultPaths(results)
    mask_dirs = []
    for r in df.itertuples():
        if r.video_id in masks:
            vol, instances = masks[r.video_id]
        else:  # unannotated normal or real videos get all-zero masks
            vol, instances = np.zeros((r.num_frames, r.height, r.width), np.uint8), {}
        write_video_masks(paths.masks(r.video_id), vol, instances, {"annotation.json": {"annotator": "import"}})
        mask_dirs.append(str(paths.masks(r.video_id)))
    df["mask_dir"], df["annotator"] = mask_dirs, "import"
    write_table(df, out, kind="videos")
    log.info("ingested %d videos from %s into %s (%s)", len(df), root, out, df.label.value_counts().to_dict())
    return df


def add_arguments(p) -> None:
    p.add_argument("--root", required=True, help="folder of videos")
    p.add_argument("--name", required=True, help="dataset name, prefixes video ids")
    p.add_argument("--out", required=True, help="manifest to write (videos contract)")
    p.add_argument("--results", default="results", help="results root (masks go to <results>/masks)")
    p.add_argument("--labels-csv")
    p.add_argument("--masks-dir")
    p.add_argument("--default-label", default="normal", choices=LABELS)


def run(args) -> int:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
        raise BrokenVideosError(f"--name {args.name!r}: use letters, digits, '_', '.', '-'")
    ingest(args.root, args.name, args.out, args.results, args.labels_csv, args.masks_dir, args.default_label)
    return 0
