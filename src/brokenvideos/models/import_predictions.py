"""`brokenvideos import-predictions`: an outside model's masks become one of our predictions dirs.

``--format mevis`` reads what SAMWISE, GLUS and VideoLISA write on a split exported by
``export-mevis``: ``<in>/<video>/<exp_id>/<frame>.png`` (0/255 or index PNGs, non-zero = the
referred region; io/mevis.py). The result is the layout ``predict`` writes (id 1 = artifact, plus
``predictions.parquet``), so ``evaluate`` scores it like every other row of Table 2.

``--exp`` picks the query whose masks are read:
- ``artifact`` (default): the artifact prompt's masks, for every video;
- ``normal``: the normal prompt's masks, stored as their complement (what is not normal is artifact);
- ``label``: the paper's queries, the artifact prompt for broken videos and the normal prompt for
  normal ones (complemented as above, so ``evaluate`` with ``normal_target: full`` scores exactly
  the normal prompt's mask against the full frame).

Every expected file is checked before anything is written; the first one missing stops the step
with its path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from brokenvideos.config import load_config
from brokenvideos.dataset.splits import SPLITS, split_videos
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io import mevis
from brokenvideos.io.atomic import write_json
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.tables import write_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)
FORMATS = ("mevis",)
QUERIES = ("artifact", "normal", "label")
RECORD = "import.json"


def query_of(label: str, exp: str) -> str:
    if exp == "label":
        return "artifact" if label == "broken" else "normal"
    return exp


def expected_frames(root: Path, rows: pd.DataFrame, exp: str) -> list[tuple[dict, str, list[Path]]]:
    """(row, query, frame paths) per video, after checking every path exists (one line per miss)."""
    plan = []
    for row in rows.to_dict("records"):
        video_dir = root / row["video_id"]
        if not video_dir.is_dir():
            raise InputError(video_dir, "prediction video is missing (expected <in>/<video>/<exp_id>/<frame>.png)")
        query = query_of(row["label"], exp)
        exp_dir = video_dir / mevis.EXP_IDS[query]
        if not exp_dir.is_dir():
            raise InputError(exp_dir, f"expression {mevis.EXP_IDS[query]} ({query} prompt) is missing for this video")
        frames = [mevis.prediction_frame(root, row["video_id"], mevis.EXP_IDS[query], mevis.frame_stem(t))
                  for t in range(int(row["num_frames"]))]
        missing = next((f for f in frames if not f.is_file()), None)
        if missing is not None:
            raise InputError(missing, f"predicted frame is missing (the video has {row['num_frames']} frames)")
        plan.append((row, query, frames))
    return plan


def import_mevis(cfg: dict, in_dir, out_dir, split: str, exp: str = "artifact") -> pd.DataFrame:
    if exp not in QUERIES:
        raise BrokenVideosError(f"import-predictions: --exp must be one of {QUERIES}, got {exp!r}")
    root = Path(in_dir)
    if not root.is_dir():
        raise InputError(root, "predictions folder is missing")
    paths = ResultPaths(cfg["results"])
    rows = split_videos(paths.videos_table, paths.splits_table, split)
    if rows.empty:
        raise BrokenVideosError(f"{paths.splits_table}: no broken or normal videos in split {split!r}")
    if exp != "artifact" and cfg["evaluate"]["normal_target"] == "empty":
        # under `empty` export-mevis gives the normal prompt an empty mask, so its complement is everything
        log.warning("--exp %s with evaluate.normal_target empty: the normal prompt's masks are read as "
                    "their complement; export and evaluate with normal_target full for the paper's queries", exp)
    out_dir = Path(out_dir)
    records = []
    for row, query, frames in tqdm(expected_frames(root, rows, exp), desc=f"import {root}", unit="video"):
        region = np.stack([mevis.read_prediction_frame(f, (row["height"], row["width"])) for f in frames])
        masks = (~region if query == "normal" else region).astype(np.uint8)
        write_video_masks(out_dir / row["video_id"], masks, {1: "artifact"} if masks.any() else {})
        records.append({"video_id": row["video_id"], "score": float(masks.mean()),
                        "label_pred": "broken" if masks.any() else "normal", "mask_dir": str(out_dir / row["video_id"])})
    write_json(out_dir / RECORD, {"format": "mevis", "source": str(root), "split": split, "exp": exp})
    df = pd.DataFrame(records)
    write_table(df, out_dir / "predictions.parquet", kind="detections")  # last: the step's output
    log.info("imported %d videos of split %s from %s into %s", len(df), split, root, out_dir)
    return df


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--format", default="mevis", choices=FORMATS)
    p.add_argument("--in", dest="in_dir", required=True, help="the model's output: <in>/<video>/<exp_id>/<frame>.png")
    p.add_argument("--name", required=True, help="the Table 2 method name (e.g. SAMWISE)")
    p.add_argument("--split", default="val", choices=SPLITS)
    p.add_argument("--exp", default="artifact", choices=QUERIES,
                   help="whose masks: the artifact prompt's, the normal prompt's (complemented) or by label")
    p.add_argument("--finetuned", action="store_true", help="the row is fine-tuned (writes .../<name>/final)")
    p.add_argument("--out-dir", help="default: results/predictions/<name>/initial|final")


def run(args) -> int:
    cfg = load_config(args.config)
    out = args.out_dir or ResultPaths(cfg["results"]).imported_predictions(args.name, args.finetuned)
    df = import_mevis(cfg, args.in_dir, out, args.split, args.exp)
    print(f"imported {len(df)} videos into {out}")
    return 0
