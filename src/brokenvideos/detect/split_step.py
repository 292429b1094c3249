"""`brokenvideos detect-split`: the detection manifest and its prompt-grouped train/val/test split."""

from __future__ import annotations

import logging

from brokenvideos.config import load_config
from brokenvideos.detect.data import detection_table, make_detection_splits
from brokenvideos.detect.settings import detect_settings
from brokenvideos.io.tables import write_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--videos", help="default: <results>/dataset/videos.parquet")
    p.add_argument("--out", help="default: <results>/detect/splits.parquet")


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    settings = detect_settings(cfg)
    table = make_detection_splits(detection_table(args.videos or paths.videos_table), settings["split"], cfg["seed"])
    write_table(table, args.out or paths.detect_splits, kind="splits")
    counts = table.groupby(["split", "generator"]).size().unstack(fill_value=0)
    log.info("detection splits (videos):\n%s", counts.to_string())
    return 0
