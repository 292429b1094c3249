"""Ray Train's TorchTrainer driven the way the localizer's trainer drives it (brokenvideos.train):
a private local cluster sized to the job, RunConfig with CheckpointConfig(num_to_keep) and
FailureConfig(max_failures), a run name hashing config and data so that re-running an interrupted
rule resumes from its latest checkpoint, and a COMPLETED marker so a finished run is redone afresh.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from brokenvideos.config import config_digest
from brokenvideos.errors import BrokenVideosError
from brokenvideos.train.step import ensure_ray

log = logging.getLogger(__name__)
COMPLETED = "COMPLETED"


def ray_fit(loop, loop_cfg: dict, out_dir, run_key: dict, settings: dict, load=None) -> tuple[dict, float]:
    """Run ``loop`` on Ray Train workers; return (state of the last checkpoint, seconds)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    from brokenvideos.detect.loop import load_checkpoint
    from brokenvideos.train.loopback import torch_config

    ray_cfg = settings["ray"]
    storage = Path(out_dir).resolve() / "ray"
    run_name = f"run-{config_digest(run_key)}"
    if (storage / run_name / COMPLETED).exists():
        shutil.rmtree(storage / run_name)
    loop_cfg = {**loop_cfg, "storage_path": str(storage / run_name),
                "threads_per_worker": ray_cfg.get("cpus_per_worker", 1)}
    t0 = time.perf_counter()
    ensure_ray(ray_cfg)  # the localizer's: a private cluster on loopback, clean logs
    resources = {"CPU": ray_cfg.get("cpus_per_worker", 1)}
    if ray_cfg.get("use_gpu"):
        resources["GPU"] = 1
    trainer = TorchTrainer(
        loop, train_loop_config=loop_cfg, torch_config=torch_config(ray_cfg),
        scaling_config=ScalingConfig(num_workers=ray_cfg["num_workers"], use_gpu=bool(ray_cfg.get("use_gpu")),
                                     resources_per_worker=resources),
        run_config=RunConfig(name=run_name, storage_path=str(storage),
                             checkpoint_config=CheckpointConfig(num_to_keep=settings["checkpoint"]["num_to_keep"]),
                             failure_config=FailureConfig(max_failures=settings["max_failures"])),
    )
    try:
        result = trainer.fit()
    except TrainingFailedError as exc:
        cause = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise BrokenVideosError(f"training failed after {settings['max_failures']} retries ({cause}); "
                                f"checkpoints are kept in {storage / run_name}: re-run to resume") from None
    with result.checkpoint.as_directory() as d:
        state = (load or load_checkpoint)(d)
    (storage / run_name / COMPLETED).write_text("exported\n")
    return state, time.perf_counter() - t0
