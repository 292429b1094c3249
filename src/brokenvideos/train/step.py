"""`brokenvideos train`: fit a localizer with Ray Train's TorchTrainer.

Writes ``<out>/initial/`` (the weights before fine-tuning), ``<out>/final/`` (after), and
``<out>/metrics.csv`` + ``metrics.json`` (per-epoch curves, DVC plots). Ray's run directory lives
under ``<out>/ray/<run name>``; the run name hashes the training config and data, so re-running
an interrupted rule resumes from its latest checkpoint, while a changed config or a re-run of a
finished training starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from brokenvideos.config import config_digest, load_config, localizer_settings
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.models import save_inference_settings
from brokenvideos.models.postprocess import POSTPROCESS_NAME, calibrate, calibration_rows
from brokenvideos.paths import ResultPaths
from brokenvideos.dataset.splits import split_videos
from brokenvideos.train.loop import build_initial_model, load_state, train_loop_per_worker
from brokenvideos.train.recipes import resolve_recipe

log = logging.getLogger(__name__)
COMPLETED = "COMPLETED"  # marks a Ray run whose weights were exported; only unmarked runs resume

def train_settings(cfg: dict, name: str | None = None) -> dict:
    """One localizer's settings (its ``train.localizers`` entry and the shared run keys), with the
    schema's defaults filled in (the schema is their one owner)."""
    return localizer_settings(cfg, name)


def _quiet_state_api_poller() -> None:
    """Runs in every worker of the private cluster (``worker_process_setup_hook``).

    Ray Train's PlacementGroupCleaner asks the State API every second whether the controller is
    alive; the State API is served by the dashboard's API server, which minimal Ray (``ray[train]``
    without ``ray[default]``) never starts, so each poll fails with a warning line. The cleaner only
    matters when a controller dies while its cluster lives on; a private cluster dies with the job.
    """
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)


def ensure_ray(ray_cfg: dict):
    import ray

    if ray.is_initialized():
        return
    # Rule logs are files: no ANSI colour around the "(Actor pid=…)" prefix of worker lines.
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    address = ray_cfg.get("address")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        from ray._private import ray_constants

        workers = ray_cfg["num_workers"]
        # Ray starts workers at niceness 15; the rule already reserves these cores (`threads`),
        # so at 15 the workers would only lose them to unrelated processes.
        os.environ.setdefault("RAY_worker_niceness", "0")
        # Loopback only: GCS, raylet (node + object manager) and workers bind 127.0.0.1 exactly when
        # the node IP is 127.0.0.1, but on Linux Ray swaps an explicit 127.0.0.1 for the host's
        # address unless multi-node clusters are off (what RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 does,
        # read once at import): switch them off while this node starts. `address` above is unaffected.
        saved, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
        try:
            # A private local cluster sized to the job, no dashboard: start-up stays a few seconds.
            ray.init(num_cpus=workers * ray_cfg.get("cpus_per_worker", 1), include_dashboard=False,
                     log_to_driver=True, configure_logging=False,
                     runtime_env={"worker_process_setup_hook": _quiet_state_api_poller,
                                  # gloo's sockets on the loopback interface too
                                  "env_vars": {"GLOO_SOCKET_IFNAME": "lo"}})
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = saved


def train(cfg: dict, out_dir, videos_path=None, splits_path=None, name: str | None = None) -> pd.DataFrame:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    from brokenvideos.train.loopback import torch_config

    paths = ResultPaths(cfg["results"])
    settings = train_settings(cfg, name)
    ray_cfg = settings["ray"]
    recipe = resolve_recipe(settings, ray_cfg["num_workers"])
    videos_path, splits_path = videos_path or paths.videos_table, splits_path or paths.splits_table
    rows = split_videos(videos_path, splits_path, "train").to_dict("records")
    # The run's name (its checkpoints' folder, in metrics.json) from the table's own paths: the
    # same wherever the results directory lives.
    data_digest = hashlib.sha256("".join(r["sha256"] + r["mask_dir"] for r in rows).encode()).hexdigest()[:8]
    for r in rows:  # Ray workers run in their own working directory: hand them absolute paths
        r["path"], r["mask_dir"] = str(Path(r["path"]).resolve()), str(Path(r["mask_dir"]).resolve())
    if not rows:
        raise BrokenVideosError(f"{splits_path}: no broken or normal videos in the train split")
    out_dir = Path(out_dir).resolve()
    initial_dir = out_dir / "initial"
    initial = build_initial_model(settings["model"], cfg["seed"], settings.get("init_weights"))
    initial.save_pretrained(initial_dir)
    save_inference_settings(initial_dir, settings["clip_len"], settings.get("crop"))
    # "Before fine-tuning" gets its operating point exactly as "after" does: on the train split.
    post = calibrate_operating_point(initial.eval(), rows, settings["clip_len"], cfg["seed"])
    write_json(initial_dir / POSTPROCESS_NAME, post)
    log.info("operating point of the initial weights, chosen on the train split: %s", post)

    run_name = f"run-{config_digest({'train': settings, 'seed': cfg['seed']})}-{data_digest}"
    storage = out_dir / "ray"
    if (storage / run_name / COMPLETED).exists():
        # A finished run is not resumed: re-running the rule (e.g. --forcerun) trains again.
        shutil.rmtree(storage / run_name)
    loop_cfg = {"seed": cfg["seed"], "model": settings["model"], "recipe": recipe, "clip_len": settings["clip_len"],
                "crop": settings.get("crop"), "train_rows": rows,
                "checkpoint_every_epochs": settings["checkpoint"]["every_epochs"], "initial_dir": str(initial_dir),
                "threads_per_worker": ray_cfg.get("cpus_per_worker", 1), "storage_path": str(storage / run_name),
                "inject_failure_at_epoch": settings.get("inject_failure_at_epoch")}
    ensure_ray(ray_cfg)
    resources = {"CPU": ray_cfg.get("cpus_per_worker", 1)}
    if ray_cfg["use_gpu"]:
        resources["GPU"] = 1
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_cfg,
        torch_config=torch_config(ray_cfg),
        scaling_config=ScalingConfig(num_workers=ray_cfg["num_workers"], use_gpu=ray_cfg["use_gpu"],
                                     resources_per_worker=resources),
        run_config=RunConfig(
            name=run_name, storage_path=str(storage),
            checkpoint_config=CheckpointConfig(num_to_keep=settings["checkpoint"]["num_to_keep"]),
            failure_config=FailureConfig(max_failures=settings["max_failures"]),
        ),
    )
    log.info("training %s on %d videos with %d workers (gpu=%s), recipe %s", settings["model"]["arch"], len(rows),
             ray_cfg["num_workers"], ray_cfg["use_gpu"], recipe)
    try:
        result = trainer.fit()
    except TrainingFailedError as exc:
        cause = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise BrokenVideosError(f"training failed after {settings['max_failures']} retries ({cause}); "
                                f"checkpoints are kept in {storage / run_name}: re-run to resume") from None
    with result.checkpoint.as_directory() as d:
        state, history = load_state(d)
    model = build_initial_model(settings["model"], cfg["seed"], None)
    model.load_state_dict(state["model"])
    model.save_pretrained(out_dir / "final")
    save_inference_settings(out_dir / "final", settings["clip_len"], settings.get("crop"))
    post = calibrate_operating_point(model.eval(), rows, settings["clip_len"], cfg["seed"])
    write_json(out_dir / "final" / POSTPROCESS_NAME, post)
    log.info("operating point chosen on the train split: %s", post)
    curves = pd.DataFrame(history)
    with atomic_path(out_dir / "metrics.csv") as tmp:
        curves.to_csv(tmp, index=False)
    write_json(out_dir / "metrics.json", {"final": history[-1], "epochs": len(history), "run": run_name,
                                          "recipe": recipe, "num_train_videos": len(rows)})
    (storage / run_name / COMPLETED).write_text("exported to final/\n")
    log.info("trained: %s", history[-1])
    return curves


def calibrate_operating_point(model, rows: list[dict], clip_len: int, seed: int) -> dict:
    """Threshold and minimum area for a model's weights, chosen on a seeded sample of the train split."""
    from brokenvideos.models.predict import predict_probabilities
    from brokenvideos.train.data import load_video_and_target

    samples = []
    for row in calibration_rows(rows, seed):
        frames, target = load_video_and_target(row)
        samples.append((row["label"], target, predict_probabilities(model, frames, clip_len)))
    return calibrate(samples)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--localizer", help="which train.localizers entry (default: the only one)")
    p.add_argument("--out-dir", required=True, help="e.g. results/train/st_unet")
    p.add_argument("--videos", help="default: <results>/dataset/videos.parquet")
    p.add_argument("--splits", help="default: <results>/dataset/splits.parquet")


def run(args) -> int:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    cfg = load_config(args.config)
    train(cfg, args.out_dir, args.videos, args.splits, args.localizer)
    return 0
