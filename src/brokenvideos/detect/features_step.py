"""`brokenvideos detect-features`: cache the frozen parts' outputs once for every detector.

``--backbone SPEC`` fills that backbone's feature store (``detect.feature_store``; default: the
run's ``detect.encoder``, into ``<results>/detect/features/<slug>``), encoding only the videos it
lacks; ``--predictor DIR --errors-out`` writes each clip's time-averaged frame-prediction error R̂.
"""

from __future__ import annotations

import logging
from pathlib import Path

from brokenvideos.config import load_config
from brokenvideos.detect.cache import prediction_errors
from brokenvideos.detect.feature_store import build_store
from brokenvideos.detect.settings import backbone_input_size, detect_settings
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths, backbone_slug
from brokenvideos.threads import add_threads_argument, set_torch_threads

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    p.add_argument("--backbone", help="fill this backbone's feature store (an encoder spec; "
                                      "'default': detect.encoder)")
    p.add_argument("--store", help="the store directory (default: <results>/detect/features/<slug>)")
    p.add_argument("--workers", type=int, help="local worker processes (default: detect.features.workers)")
    p.add_argument("--predictor", help="a trained frame predictor (save_pretrained directory)")
    p.add_argument("--errors-out", help="write prediction errors here (needs --predictor)")
    add_threads_argument(p, "torch threads in all (0: torch's default)")


def run(args) -> int:
    cfg = load_config(args.config)
    settings = detect_settings(cfg)
    paths = ResultPaths(cfg["results"])
    set_torch_threads(args.threads)
    rows = read_table(args.splits or paths.detect_splits, kind="splits").to_dict("records")
    if not args.backbone and not args.errors_out:
        raise BrokenVideosError("detect-features: give --backbone and/or --predictor with --errors-out")
    if args.backbone:
        spec = settings["encoder"] if args.backbone == "default" else args.backbone
        opts = settings["features"]
        meta = build_store(rows, spec, backbone_input_size(settings, spec),
                           Path(args.store or paths.feature_store(backbone_slug(spec))),
                           workers=args.workers or opts["workers"], threads=args.threads, ray_cfg=opts["ray"])
        rate = f"{meta['frames_per_s']:.1f} frames/s" if meta["frames_per_s"] else "nothing to encode"
        log.info("%s: %d videos (%d encoded, %d reused), %s", spec, meta["videos"], meta["encoded"], meta["reused"], rate)
    if args.errors_out:
        if not args.predictor:
            raise BrokenVideosError("detect-features: --errors-out needs --predictor")
        meta = prediction_errors(rows, args.predictor, settings["clip_len"], settings["stride"], Path(args.errors_out))
        log.info("prediction errors: %d frames at %.1f frames/s", meta["frames"], meta["frames_per_s"])
    return 0
