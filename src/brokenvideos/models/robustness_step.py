"""`brokenvideos localize-robustness --op OP --level L`: Table 2's fine-tuned localizers on lossy
copies of the evaluation split's broken videos (beyond the papers: no published work measures how
artifact localization degrades under compression).

Each localizer predicts with its own operating point (chosen on clean train videos, as for Table 2)
and is scored with the same protocol against the same masks, so a row's drop from the clean
`final` row is the operation's doing. Output under ``results/robustness/<op>-<level>/localize/``:
``<model>/predictions/`` and ``<model>/metrics/{per_video.parquet,summary.json}``, and
``metrics.json`` (written last) with each localizer's broken-video J, F and J&F.
"""

from __future__ import annotations

import logging

from brokenvideos.config import load_config
from brokenvideos.io.atomic import write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.metrics.evaluate import evaluate_split, summarize
from brokenvideos.models.predict import predict_split
from brokenvideos.paths import ResultPaths, op_level
from brokenvideos.threads import add_threads_argument, set_torch_threads

log = logging.getLogger(__name__)


def localize_robustness(cfg: dict, op: str, level: int) -> dict:
    paths = ResultPaths(cfg["results"])
    name = op_level(op, level)
    ev = cfg["evaluate"]
    out = paths.robustness_localize_dir(name)
    copies = read_table(paths.degraded_videos_table(name), kind="videos")
    videos = out / "videos.parquet"  # the broken copies only: the detection side's others are not scored here
    write_table(copies[copies.label == "broken"].reset_index(drop=True), videos, kind="videos")
    cells = {}
    for entry in cfg["train"]["localizers"]:
        model = entry["name"]
        weights = paths.train_checkpoint(model, "final")
        predict_split(cfg, out / model / "predictions", ev["split"], weights=weights, videos_path=videos)
        per_video = evaluate_split(cfg, out / model / "predictions", ev["split"], ev["protocol"],
                                   ev["normal_target"], videos_path=videos)
        summary = summarize(per_video) | {"protocol": ev["protocol"], "split": ev["split"], "op": op, "level": level}
        write_table(per_video, out / model / "metrics" / "per_video.parquet")
        write_json(out / model / "metrics" / "summary.json", summary)
        cells[model] = summary["broken"]
        log.info("%s under %s: broken J&F %.4f (%d videos)", model, name, summary["broken"]["J&F"],
                 summary["broken"]["n"])
    result = {"op": op, "level": level, "broken": cells}
    write_json(out / "metrics.json", result)
    return result


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--op", required=True, choices=("abr", "crf", "bit-error"))
    p.add_argument("--level", required=True, type=int, choices=(1, 2, 3))
    add_threads_argument(p)


def run(args) -> int:
    set_torch_threads(args.threads)
    cfg = load_config(args.config)
    result = localize_robustness(cfg, args.op, args.level)
    print(" ".join(f"{m}={v['J&F']:.4f}" for m, v in result["broken"].items()))
    return 0
