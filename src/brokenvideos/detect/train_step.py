"""`brokenvideos detect-train`: train every configured detector on each generator's training set
(its generated videos + the real ones), and the Sora-label classifiers, in ONE Ray Train run.

Each (detector, training set) is a job; jobs are dealt to the Ray workers (most expensive first,
in rounds of one job per worker), so Ray's start-up is paid once and two workers keep two cores
busy. Writes ``<models>/<name>/<generator>/`` (save_pretrained) and ``<models>/<name>/metrics.json``
per detector, ``<sora>/<name>/`` per classifier, and ``<models>/metrics.csv`` (every epoch).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.detect import build_detector, detector_class
from brokenvideos.detect.cache import check_compatible, sidecar
from brokenvideos.detect.data import generated_generators, parse_subcategories, subset
from brokenvideos.detect.feature_store import store_meta
from brokenvideos.detect.loop import jobs_loop, load_all_ranks
from brokenvideos.detect.settings import detect_settings, detector_entry, detector_kwargs, resolve_recipe
from brokenvideos.detect.trainer import ray_fit
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def cache_meta(path):
    if not path or not sidecar(path).exists():
        return None
    return json.loads(sidecar(path).read_text())


def _absolute(rows: list[dict]) -> list[dict]:
    for r in rows:  # Ray workers run in their own directory
        r["path"] = str(Path(r["path"]).resolve())
    return rows


def detector_jobs(settings, table, name, predictor, feature_meta, error_meta) -> list[dict]:
    entry = detector_entry(settings, name)
    kwargs = detector_kwargs(settings, entry, Path(predictor).resolve() if predictor else None)
    probe = build_detector(entry["detector"], **kwargs)  # bad options or a missing encoder fail here, at once
    use_feats, use_errs = check_compatible(probe, feature_meta, error_meta)
    recipe = resolve_recipe(settings, entry)
    jobs = []
    for gen in generated_generators(table):
        rows = subset(table, "train", gen)
        if rows.is_generated.nunique() < 2:
            raise BrokenVideosError(f"detect: the train split lacks {'real' if rows.is_generated.all() else gen} videos")
        jobs.append({"kind": "detector", "key": f"{name}/{gen}", "name": name, "trainset": gen,
                     "detector": entry["detector"], "kwargs": kwargs, "recipe": recipe,
                     "clip_len": probe.clip_len, "stride": settings["stride"],
                     "crop": entry["crop"] if "crop" in entry else settings["crop"],
                     "use_features": use_feats, "use_errors": use_errs, "rows": _absolute(rows.to_dict("records")),
                     "cost": probe.COST * len(rows) * recipe["epochs"]})
    return jobs


def sora_rows(table: pd.DataFrame, split: str) -> list[dict]:
    from brokenvideos.detect.sora import frame_labels

    rows = table[(table.split == split) & (table.is_generated == 1)].sort_values("video_id").to_dict("records")
    for r in rows:
        r["labels"] = frame_labels(r["mask_dir"], parse_subcategories(r["instance_subcategories"]),
                                   int(r["num_frames"])).tolist()
    return _absolute(rows)


def sora_jobs(settings, table, feature_meta) -> list[dict]:
    from brokenvideos.detect.sora import ArtifactLabelClassifier

    sora = settings["sora"]
    rows = sora_rows(table, "train") if sora["classifiers"] else []
    jobs = []
    for name, kwargs in sora["classifiers"].items():
        probe = ArtifactLabelClassifier(**kwargs)
        use_feats, _ = check_compatible(probe, feature_meta, None)
        recipe = {"epochs": sora["epochs"], "batch_size": sora["batch_size"], "lr": sora["lr"]}
        cost = (0.02 if use_feats else 1.0) * sum(len(r["labels"]) for r in rows) * recipe["epochs"] / 7
        jobs.append({"kind": "sora", "key": f"sora/{name}", "name": name, "kwargs": kwargs, "recipe": recipe,
                     "crop": sora.get("crop"), "use_features": use_feats, "rows": rows, "cost": cost})
    return jobs


def deal(jobs: list[dict], workers: int) -> list[list[dict | None]]:
    """Rounds of one job per worker, most expensive first: each round's jobs cost about the same,
    so the collective report at its end keeps nobody waiting long."""
    ordered = sorted(jobs, key=lambda j: (-j["cost"], j["key"]))
    return [ordered[i:i + workers] for i in range(0, len(ordered), workers)]


def train_all(cfg: dict, splits_path, models_dir, sora_dir, predictor=None, features=None, errors=None,
              names=None) -> dict:
    settings = detect_settings(cfg)
    table = read_table(splits_path, kind="splits")
    feature_meta, error_meta = store_meta(features), cache_meta(errors)
    names = list(settings["detectors"]) if names is None else names
    jobs = [j for n in names for j in detector_jobs(settings, table, n, predictor, feature_meta, error_meta)]
    jobs += sora_jobs(settings, table, feature_meta)
    workers = settings["ray"]["num_workers"]
    rounds = deal(jobs, workers)
    loop_cfg = {"name": "detectors", "seed": cfg["seed"], "rounds": rounds,
                "features": str(Path(features).resolve()) if any(j["use_features"] for j in jobs) else None,
                "errors": str(Path(errors).resolve()) if any(j.get("use_errors") for j in jobs) else None,
                "inject_failure": settings.get("inject_failure")}
    key = {"seed": cfg["seed"], "caches": [feature_meta, error_meta],
           "jobs": [{k: (v if k != "rows" else [r["video_id"] for r in v]) for k, v in j.items()} for j in jobs]}
    log.info("training %d jobs on %d Ray workers in %d rounds", len(jobs), workers, len(rounds))
    state, seconds = ray_fit(jobs_loop, loop_cfg, models_dir, key, settings, load=load_all_ranks)
    models_dir, sora_dir = Path(models_dir), Path(sora_dir)
    history = pd.DataFrame(state["history"])
    for j in jobs:
        if j["kind"] == "detector":
            model = detector_class(j["detector"])(**j["kwargs"])
            target = models_dir / j["name"] / j["trainset"]
        else:
            from brokenvideos.detect.sora import ArtifactLabelClassifier

            model = ArtifactLabelClassifier(**j["kwargs"])
            target = sora_dir / j["name"]
        missing, unexpected = model.load_state_dict(state["done"][j["key"]], strict=False)
        prefixes = model.frozen_prefixes()
        if unexpected or not all(prefixes and k.startswith(prefixes) for k in missing):
            raise BrokenVideosError(f"{j['key']}: trained state does not fit the model")
        model.save_pretrained(target)
    with atomic_path(models_dir / "metrics.csv") as tmp:
        history.to_csv(tmp, index=False)
    per_job = history.groupby("job").seconds.sum().to_dict() if len(history) else {}
    for n in {j["name"] for j in jobs if j["kind"] == "detector"}:
        mine = [j for j in jobs if j["kind"] == "detector" and j["name"] == n]
        write_json(models_dir / n / "metrics.json", {
            "detector": mine[0]["detector"], "trainsets": [j["trainset"] for j in mine],
            "train_seconds": {j["trainset"]: per_job.get(j["key"]) for j in mine}, "recipe": mine[0]["recipe"],
            "used_feature_cache": mine[0]["use_features"], "used_error_cache": mine[0]["use_errors"]})
    for j in jobs:
        if j["kind"] == "sora":
            write_json(models_dir / f"sora-{j['name']}.json", {"train_seconds": per_job.get(j["key"]),
                                                             "frames": sum(len(r["labels"]) for r in j["rows"])})
    summary = {"jobs": len(jobs), "workers": workers, "seconds": seconds,
               "job_seconds": float(sum(per_job.values())), "ray_overhead_seconds": seconds - float(sum(per_job.values())) / workers}
    write_json(models_dir / "train.json", summary)
    log.info("trained %d jobs in %.1f s (%.1f s of training on %d workers)", len(jobs), seconds,
             summary["job_seconds"], workers)
    return summary


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    p.add_argument("--predictor", help="frozen frame predictor directory (temporal_defect)")
    p.add_argument("--features", help="encoder feature cache (optional)")
    p.add_argument("--errors", help="prediction-error cache (optional)")
    p.add_argument("--names", nargs="*", help="detectors to train (default: all of detect.detectors)")
    p.add_argument("--models-dir", required=True)
    p.add_argument("--sora-dir", required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    train_all(cfg, args.splits or paths.detect_splits, args.models_dir, args.sora_dir, args.predictor,
              args.features, args.errors, args.names)
    return 0
