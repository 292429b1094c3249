"""`brokenvideos detect-features`: cache the frozen parts' outputs once for every detector.

``--encoder-out`` writes the frozen image encoder's per-frame features; ``--predictor DIR
--errors-out`` writes each clip's time-averaged frame-prediction error R̂.
"""

from __future__ import annotations

import logging
from pathlib import Path

from brokenvideos.config import load_config
from brokenvideos.detect.cache import encoder_features, prediction_errors
from brokenvideos.detect.settings import detect_settings
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    p.add_argument("--encoder-out", help="write encoder features here")
    p.add_argument("--predictor", help="a trained frame predictor (save_pretrained directory)")
    p.add_argument("--errors-out", help="write prediction errors here (needs --predictor)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def run(args) -> int:
    import torch

    cfg = load_config(args.config)
    settings = detect_settings(cfg)
    paths = ResultPaths(cfg["results"])
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = read_table(args.splits or paths.detect_splits, kind="splits").to_dict("records")
    if not args.encoder_out and not args.errors_out:
        raise BrokenVideosError("detect-features: give --encoder-out and/or --predictor with --errors-out")
    if args.encoder_out:
        meta = encoder_features(rows, settings["encoder"], settings["encoder_input_size"], Path(args.encoder_out))
        log.info("encoder %s: %d frames at %.1f frames/s", meta["encoder"], meta["frames"], meta["frames_per_s"])
    if args.errors_out:
        if not args.predictor:
            raise BrokenVideosError("detect-features: --errors-out needs --predictor")
        meta = prediction_errors(rows, args.predictor, settings["clip_len"], settings["stride"], Path(args.errors_out))
        log.info("prediction errors: %d frames at %.1f frames/s", meta["frames"], meta["frames_per_s"])
    return 0
