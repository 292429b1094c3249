"""Per-worker Ray Train loops: the frame predictor (real videos only) and the detectors.

One Ray run trains a detector on every training set in turn (one job per generator, as in He et
al. Table I), so the Ray start-up is paid once per detector. Checkpoints after every epoch hold the
finished jobs' weights, the current job's model and optimizer, and the history, so a restarted
worker group (FailureConfig) or a re-run of the rule continues where the last checkpoint left off.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from brokenvideos.config import derive_seed
from brokenvideos.threads import set_torch_threads
from brokenvideos.train.loop import epoch_order
from brokenvideos.train.recipes import lr_factor

log = logging.getLogger(__name__)
STATE_NAME = "state.pt"


def state_name(rank: int) -> str:
    return f"state-rank{rank}.pt"


def save_checkpoint(state: dict, rank: int) -> str:
    d = tempfile.mkdtemp(prefix="bv-detect-ckpt-")
    torch.save(state, os.path.join(d, state_name(rank)))
    return d


def load_checkpoint(directory, rank: int = 0) -> dict:
    return torch.load(Path(directory) / state_name(rank), map_location="cpu", weights_only=True)


def load_all_ranks(directory) -> dict:
    """The finished jobs of every rank, merged (each rank checkpoints its own file)."""
    done, history = {}, []
    for f in sorted(Path(directory).glob("state-rank*.pt")):
        state = torch.load(f, map_location="cpu", weights_only=True)
        done.update(state["done"])
        history += state["history"]
    return {"done": done, "history": history}


def _maybe_inject_failure(cfg: dict, job: str, epoch: int, rank: int) -> None:
    """Fault injection for tests of FailureConfig: fail once, at the start of this job's epoch."""
    at = cfg.get("inject_failure")
    marker = Path(cfg["storage_path"]) / "injected-failure.done"
    if at and list(at) == [job, epoch] and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("failed once on purpose\n")
        raise RuntimeError(f"injected failure at {job} epoch {epoch}")


def _report(metrics: dict, state: dict, rank: int) -> None:
    import ray.train

    d = save_checkpoint(state, rank)
    try:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
    finally:  # report has copied it into the run's storage
        shutil.rmtree(d, ignore_errors=True)


def _resume(rank: int) -> dict | None:
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if not checkpoint:
        return None
    with checkpoint.as_directory() as d:
        return load_checkpoint(d, rank) if (Path(d) / state_name(rank)).exists() else None


def _make_job(cfg: dict, job: dict, caches: dict):
    """(model builder, data, loss) for one job."""
    from brokenvideos.detect import build_detector
    from brokenvideos.detect.clips import ClipSet
    from brokenvideos.detect.predictor import FramePredictor
    from brokenvideos.detect.sora import ArtifactLabelClassifier, FrameLabelSet

    feats = caches.get("features") if job.get("use_features") else None
    if job["kind"] == "detector":
        # a worker's jobs share the real training videos: each video is decoded once per worker
        data = ClipSet(job["rows"], job["clip_len"], job["stride"], job.get("crop"), cfg["seed"], feats,
                       caches.get("errors") if job.get("use_errors") else None,
                       decoded=caches.setdefault("decoded", {}))
        return (lambda: build_detector(job["detector"], **job["kwargs"])), data, \
            (lambda model, x, y: model.training_loss(x, y))
    if job["kind"] == "sora":
        data = FrameLabelSet(job["rows"], feats, job.get("crop"), cfg["seed"])
        return (lambda: ArtifactLabelClassifier(**job["kwargs"])), data, (lambda model, x, y: model.training_loss(x, y))
    if job["kind"] == "predictor":
        data = TripletSet(job["rows"], job.get("crop"), cfg["seed"])
        return (lambda: FramePredictor(**job["kwargs"])), data, \
            (lambda model, x, y: F.l1_loss(model(x[:, 0], x[:, 1]), y))
    raise ValueError(f"unknown job kind {job['kind']!r}")


def jobs_loop(cfg: dict) -> None:
    """Each worker trains its own list of jobs (task parallelism: the models are small, so one
    model per worker beats splitting every batch). Workers report in lock-step, once per round of
    jobs (ray.train.report is collective); with one worker, after every epoch."""
    import ray.train

    from brokenvideos.detect.cache import read_prediction_errors
    from brokenvideos.detect.feature_store import read_store

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    set_torch_threads(max(1, int(cfg.get("threads_per_worker", 1))))
    caches = {}
    if cfg.get("features"):
        caches["features"] = read_store(cfg["features"])[1]
    if cfg.get("errors"):
        caches["errors"] = read_prediction_errors(cfg["errors"])[1]
    rounds = cfg["rounds"]  # rounds[k][rank]: a job or None
    # every rank resumes from the same collective checkpoint, so all skip the same rounds
    state = _resume(rank) or {"done": {}, "history": [], "round": -1}
    for k, round_jobs in enumerate(rounds):
        if k <= state.get("round", -1):
            continue
        job = round_jobs[rank] if rank < len(round_jobs) else None
        metrics = {"round": k, "rank": rank, "job": None}
        if job is not None and job["key"] not in state["done"]:
            metrics = _train_job(cfg, job, caches, state, rank, world)
        state["round"] = k
        _report({**metrics, "round": k}, state, rank)


def train_in_process(job: dict, caches: dict, seed: int) -> tuple[dict, list[dict]]:
    """One job without Ray and without checkpoints (benchmarks of the spread over seeds): its
    trainable state and its per-epoch history. The same code as a Ray worker's."""
    state = {"done": {}, "history": []}
    with tempfile.TemporaryDirectory() as d:
        _train_job({"seed": seed, "storage_path": d}, job, caches, state, rank=0, world=2)  # world 2: no report
    return state["done"][job["key"]], state["history"]


def _train_job(cfg: dict, job: dict, caches: dict, state: dict, rank: int, world: int) -> dict:
    key, recipe = job["key"], job["recipe"]
    build, data, loss_fn = _make_job(cfg, job, caches)
    torch.manual_seed(derive_seed(cfg["seed"], key) % (2**31))
    model = build()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe["lr"], weight_decay=recipe.get("weight_decay", 0.0))
    start_epoch = 0
    if state.get("current") == key:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
        log.info("rank %d resumed %s at epoch %d", rank, key, start_epoch)
    batch, t_job = recipe["batch_size"], time.perf_counter()
    steps_per_epoch = sum(1 for i in range(0, len(data), batch) if len(data) - i >= 2)
    total_steps = steps_per_epoch * recipe["epochs"]
    schedule = {"schedule": "constant", **recipe}  # the predictor's and Sora's recipes name none
    metrics = {}
    for epoch in range(start_epoch, recipe["epochs"]):
        _maybe_inject_failure(cfg, key, epoch, rank)
        data.epoch = epoch
        order = epoch_order(len(data), derive_seed(cfg["seed"], key) % (2**31), epoch, 0, 1)
        model.train()
        t0, losses, seen = time.perf_counter(), [], 0
        for step, i in enumerate(range(0, len(order), batch), start=epoch * steps_per_epoch):
            idx = order[i:i + batch]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x, y = data.batch(idx)
            loss = loss_fn(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:  # a function of the step, so a resumed run follows it too
                group["lr"] = recipe["lr"] * lr_factor(step, total_steps, schedule)
            optimizer.step()
            losses.append(loss.item())
            seen += len(idx)
        elapsed = time.perf_counter() - t0
        metrics = {"job": key, "rank": rank, "epoch": epoch, "loss": float(np.mean(losses)) if losses else math.nan,
                   "lr": optimizer.param_groups[0]["lr"], "items_per_s": seen / max(elapsed, 1e-9), "seconds": elapsed}
        state["history"] = state["history"] + [metrics]
        if epoch == recipe["epochs"] - 1:
            state["done"] = {**state["done"], key: model.trainable_state()}
            for k in ("current", "model", "optimizer", "epoch"):
                state.pop(k, None)
        else:
            state.update(current=key, epoch=epoch, model=model.state_dict(), optimizer=optimizer.state_dict())
            if world == 1:
                _report(metrics, state, rank)
        log.info("%s epoch %d loss %.4f (%.0f items/s)", key, epoch, metrics["loss"], metrics["items_per_s"])
    metrics = {**metrics, "job_seconds": time.perf_counter() - t_job}
    return metrics


class TripletSet:
    """(f_t, f_{t+1}) -> f_{t+2} from real videos, random crops reproducible from (seed, epoch, i)."""

    def __init__(self, rows: list[dict], crop, seed: int):
        from brokenvideos.detect.data import load_frames

        self.crop, self.seed, self.epoch = crop, seed, 0
        self.frames = [load_frames(r["path"], 3) for r in rows]
        self.items = [(v, t) for v, f in enumerate(self.frames) for t in range(len(f) - 2)]

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, indices):
        from brokenvideos.detect.cache import to_tensor

        out = []
        for i in indices:
            v, t = self.items[int(i)]
            x = self.frames[v][t:t + 3]
            if self.crop:
                rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                ch, cw = min(self.crop[0], x.shape[1]), min(self.crop[1], x.shape[2])
                y0, x0 = int(rng.integers(0, x.shape[1] - ch + 1)), int(rng.integers(0, x.shape[2] - cw + 1))
                x = x[:, y0:y0 + ch, x0:x0 + cw]
            out.append(to_tensor(x))
        stacked = torch.stack(out)  # (B, 3 frames, 3, H, W)
        return stacked, stacked[:, 2]
