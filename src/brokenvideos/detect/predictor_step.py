"""`brokenvideos detect-predictor`: train the frame predictor on real training videos only, through
Ray Train; it is then frozen and shared by every temporal_defect detector."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.detect.loop import jobs_loop, load_all_ranks
from brokenvideos.detect.predictor import FramePredictor
from brokenvideos.detect.settings import detect_settings
from brokenvideos.detect.trainer import ray_fit
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def real_training_rows(splits_path) -> list[dict]:
    """Real videos of the train split: the predictor must learn a camera's motion, nothing else."""
    table = read_table(splits_path, kind="splits")
    rows = table[(table.split == "train") & (table.is_generated == 0)].sort_values("video_id")
    if rows.empty:
        raise BrokenVideosError(f"{splits_path}: no real videos in the train split to train the frame predictor on")
    out = rows.to_dict("records")
    for r in out:
        r["path"] = str(Path(r["path"]).resolve())
    return out


def train_predictor(cfg: dict, splits_path, out_dir) -> dict:
    settings = detect_settings(cfg)
    p = settings["predictor"]
    rows = real_training_rows(splits_path)
    recipe = {"epochs": p["epochs"], "batch_size": p["batch_size"], "lr": p["lr"]}
    kwargs = {"width": p["width"], "motion": p["motion"]}
    FramePredictor(**kwargs)  # options checked before Ray starts
    job = {"kind": "predictor", "key": "frame_predictor", "kwargs": kwargs, "recipe": recipe, "crop": p.get("crop"),
           "rows": rows}
    loop_cfg = {"name": "frame_predictor", "seed": cfg["seed"], "rounds": [[job]],
                "inject_failure": settings.get("inject_failure")}
    key = {"predictor": p, "seed": cfg["seed"], "videos": [r["video_id"] for r in rows]}
    # one job: one worker (a second would idle), whatever detect.ray.num_workers says
    state, seconds = ray_fit(jobs_loop, loop_cfg, out_dir, key, {**settings, "ray": {**settings["ray"], "num_workers": 1}},
                             load=load_all_ranks)
    model = FramePredictor(**kwargs)
    model.load_state_dict(state["done"]["frame_predictor"])
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir / "model")
    history = pd.DataFrame(state["history"])
    with atomic_path(out_dir / "metrics.csv") as tmp:
        history.to_csv(tmp, index=False)
    summary = {"videos": len(rows), "labels": sorted({r["label"] for r in rows}), "seconds": seconds,
               "final_l1": float(history.loss.iloc[-1])}
    write_json(out_dir / "metrics.json", summary)
    log.info("frame predictor trained on %d real videos in %.1f s: %s", len(rows), seconds, summary)
    return summary


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    p.add_argument("--out-dir", help="default: <results>/detect/predictor")


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    train_predictor(cfg, args.splits or paths.detect_splits, args.out_dir or paths.detect_predictor)
    return 0
