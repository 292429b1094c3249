"""`brokenvideos detect VIDEO [--model DIR]`: is this video generated?

Prints a JSON with the video's score (the mean of its clips' P(generated)), the per-clip scores
and the verdict at the stated threshold. ``--folder DIR --out TABLE`` scores every video under a
folder into a Parquet (or CSV) table, one row per video; a file that cannot be scored (corrupt,
shorter than one clip) gets its error in its row and one line on stderr, and the others go on.
Whole frames are scored (the benchmark's ``eval_crop`` does not apply here).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd

from brokenvideos.detect import load_detector
from brokenvideos.detect.data import load_frames
from brokenvideos.detect.metrics import THRESHOLD
from brokenvideos.detect.scoring import score_frames
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import atomic_path
from brokenvideos.threads import add_threads_argument, set_torch_threads

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
DEFAULT_MODELS = Path("results/detect/models/temporal_defect")


def default_model() -> Path:
    trained = sorted(p for p in DEFAULT_MODELS.glob("*") if (p / "config.json").exists())
    if not trained:
        raise BrokenVideosError(f"no --model given and no trained detector in {DEFAULT_MODELS} (run `make run` first)")
    return trained[0]


def score_video(model, path, stride: int, threshold: float = THRESHOLD) -> dict:
    frames = load_frames(path, model.clip_len)
    clips = score_frames(model, frames, stride)
    score = float(sum(s for _, s in clips) / len(clips))
    return {"video": str(path), "score": score, "verdict": "generated" if score >= threshold else "real",
            "threshold": threshold, "clip_len": model.clip_len,
            "clips": [{"start": int(s), "score": float(p)} for s, p in clips]}


def add_arguments(p) -> None:
    p.add_argument("video", nargs="?", help="a video file")
    p.add_argument("--model", help=f"a trained detector directory (default: the first under {DEFAULT_MODELS})")
    p.add_argument("--folder", help="score every video under this folder instead")
    p.add_argument("--out", help="--folder: table to write (.parquet or .csv)")
    p.add_argument("--stride", type=int, default=3, help="frames between clip starts")
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    add_threads_argument(p)


def run(args) -> int:
    set_torch_threads(args.threads)
    if bool(args.video) == bool(args.folder):
        raise BrokenVideosError("detect: give a VIDEO or --folder DIR")
    model_dir = Path(args.model) if args.model else default_model()
    model = load_detector(model_dir)  # a missing frozen encoder fails here, before any video
    if args.video:
        path = Path(args.video)
        if not path.exists():
            raise InputError(path, "video file is missing")
        result = score_video(model, path, args.stride, args.threshold) | {"model": str(model_dir)}
        print(json.dumps(result, indent=1))
        return 0
    folder = Path(args.folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    if not args.out:
        raise BrokenVideosError("detect --folder needs --out TABLE (.parquet or .csv)")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    rows, failed = [], 0
    for f in files:
        try:
            r = score_video(model, f, args.stride, args.threshold)
            rows.append({"video": str(f), "score": r["score"], "verdict": r["verdict"], "num_clips": len(r["clips"]),
                         "clip_scores": json.dumps([c["score"] for c in r["clips"]]), "error": ""})
        except InputError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            rows.append({"video": str(f), "score": float("nan"), "verdict": "error", "num_clips": 0,
                         "clip_scores": "[]", "error": exc.problem})
    df = pd.DataFrame(rows, columns=["video", "score", "verdict", "num_clips", "clip_scores", "error"])
    df["threshold"] = args.threshold
    out = Path(args.out)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False) if out.suffix == ".csv" else df.to_parquet(tmp, index=False)
    print(json.dumps({"videos": len(files), "scored": len(files) - failed, "failed": failed, "out": str(out),
                      "model": str(model_dir)}))
    return 0
