"""`brokenvideos degrade-videos --op OP --level L`: the lossy copies the robustness tables test on.

Which videos: the detection test split (every label, for He et al. Table II) and the broken videos
of the localization evaluation split (for the localizers' table); each is degraded once, whichever
side asks for it. Output, under ``results/robustness/<op>-<level>/``: ``videos/<id>.mp4``,
``records/<id>.json`` (the `degrade` record plus the source's sha256, the bit-error interval and seed,
written after its mp4, so a re-run skips the videos finished from the same source at the same rate), and ``videos.parquet``, the videos contract of the copies (path and sha256 replaced, the
record's measurements added), written last.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from brokenvideos.config import derive_seed, load_config
from brokenvideos.dataset.splits import split_videos
from brokenvideos.degrade.ops import degrade
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.io.video import sha256_file
from brokenvideos.paths import ResultPaths, op_level

log = logging.getLogger(__name__)
RECORD_COLUMNS = ("kbps", "source_kbps", "flipped_bits", "frames_decoded", "packets_failed")


def videos_to_degrade(cfg: dict, videos_path, splits_path, detect_splits_path=None) -> pd.DataFrame:
    """Rows of the videos contract: the detection test videos and the localization split's broken ones."""
    videos = read_table(videos_path, kind="videos")
    ids = set()
    if cfg["robustness"]["detectors"] and detect_splits_path:
        detect = read_table(detect_splits_path, kind="splits")
        ids |= set(detect.video_id[detect.split == "test"])
    if cfg["robustness"]["localizers"]:
        ids |= set(split_videos(videos_path, splits_path, cfg["evaluate"]["split"], labels=("broken",)).video_id)
    if not ids:
        raise BrokenVideosError("degrade-videos: no videos to degrade (robustness.detectors and localizers are off, "
                                "or the splits are empty)")
    return videos[videos.video_id.isin(ids)].sort_values("video_id").reset_index(drop=True)


def degrade_videos(cfg: dict, rows: pd.DataFrame, op: str, level: int) -> pd.DataFrame:
    paths = ResultPaths(cfg["results"])
    name = op_level(op, level)
    interval = cfg["robustness"]["bit_error_intervals"][level - 1] if op == "bit-error" else None
    out_rows = []
    for row in tqdm(rows.to_dict("records"), desc=f"degrade {name}", unit="video"):
        out, rec_path = paths.degraded_video(name, row["video_id"]), paths.degraded_record(name, row["video_id"])
        seed = derive_seed(cfg["seed"], "degrade", row["video_id"]) % (2**32)
        made_from = {"source_sha256": row["sha256"], "interval": interval, "seed": seed}
        record = json.loads(rec_path.read_text()) if rec_path.exists() and out.exists() else {}
        if {k: record.get(k) for k in made_from} != made_from:  # not finished, or made from another source, rate or seed
            rec_path.unlink(missing_ok=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            record = degrade(row["path"], out, op, level, seed=seed, interval=interval)
            if record["frames_decoded"] != row["num_frames"]:
                # Reported, not dropped: every later step expects the source's frame count.
                raise InputError(out, f"{record['frames_decoded']} of {row['num_frames']} frames decode "
                                      f"({record['packets_failed']} packets failed); lower the bit-error rate "
                                      "(robustness.bit_error_intervals)")
            record |= made_from
            write_json(rec_path, record)
        out_rows.append({**row, "path": str(out), "sha256": sha256_file(out), "source": f"degrade:{op}:{level}",
                         **{f"degrade_{k}": record[k] for k in RECORD_COLUMNS}})
    df = pd.DataFrame(out_rows)
    write_table(df, paths.degraded_videos_table(name), kind="videos")
    log.info("%s: %d videos, %.1f kbps on average (sources %.1f), %d bits flipped", name, len(df),
             df.degrade_kbps.mean(), df.degrade_source_kbps.mean(), int(df.degrade_flipped_bits.sum()))
    return df


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--op", required=True, choices=("abr", "crf", "bit-error"))
    p.add_argument("--level", required=True, type=int, choices=(1, 2, 3))
    p.add_argument("--videos", help="default: <results>/dataset/videos.parquet")
    p.add_argument("--splits", help="default: <results>/dataset/splits.parquet")
    p.add_argument("--detect-splits", help="the detection split (its test videos are degraded too)")


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    rows = videos_to_degrade(cfg, args.videos or paths.videos_table, args.splits or paths.splits_table,
                             args.detect_splits)
    degrade_videos(cfg, rows, args.op, args.level)
    return 0
