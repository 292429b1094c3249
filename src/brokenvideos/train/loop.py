"""The per-worker training loop Ray Train runs on every worker.

Checkpoints hold model, optimizer, step, epoch and the metrics history, so a restarted worker group
(FailureConfig.max_failures) or a re-run of the rule continues where the last checkpoint left off.
"""

from __future__ import annotations

import json
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

from brokenvideos.models import build_model, model_class
from brokenvideos.train.data import ClipDataset
from brokenvideos.train.recipes import lr_factor

log = logging.getLogger(__name__)
STATE_NAME = "state.pt"


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """BCE for every pixel plus one soft Dice over the whole batch.

    Dice per clip would be useless on normal clips: with an all-zero target it is 1 − 1/(Σp + 1),
    ≈ 1 for any realistic Σp over thousands of pixels, so it would add a constant. Over the batch,
    false positives on normal clips still count, through the denominator.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(pos_weight, device=logits.device))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> np.ndarray:
    """This worker's clip indices for one epoch.

    Every worker shuffles identically, pads the permutation by wrapping to a multiple of the world
    size (as DistributedSampler does), then takes its own stride: all workers run the same number
    of steps, or the last all-reduce of the longer one would wait forever.
    """
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm = np.concatenate([perm, perm[: (-n) % world]])
    return perm[rank::world]


def _save_state(model, optimizer, step, epoch, history) -> str:
    d = tempfile.mkdtemp(prefix="bv-ckpt-")
    module = model.module if hasattr(model, "module") else model
    torch.save({"model": module.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "epoch": epoch}, os.path.join(d, STATE_NAME))
    Path(d, "history.json").write_text(json.dumps(history))
    Path(d, "model_config.json").write_text(json.dumps(module.config))
    return d


def load_state(checkpoint_dir) -> tuple[dict, list]:
    state = torch.load(Path(checkpoint_dir) / STATE_NAME, map_location="cpu", weights_only=True)
    return state, json.loads(Path(checkpoint_dir, "history.json").read_text())


def _maybe_inject_failure(cfg: dict, epoch: int, rank: int) -> None:
    """Fault injection for tests of FailureConfig: fail once, at the start of this epoch."""
    at = cfg.get("inject_failure_at_epoch")
    marker = Path(cfg["storage_path"]) / "injected-failure.done"
    if at is not None and epoch == at and rank == 0 and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("failed once on purpose\n")
        raise RuntimeError(f"injected failure at epoch {epoch}")


def train_loop_per_worker(cfg: dict) -> None:
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(max(1, int(cfg.get("threads_per_worker", 1))))
    recipe = cfg["recipe"]

    model = model_class(cfg["model"]["arch"]).from_pretrained(cfg["initial_dir"])
    # Frozen parts (a pre-trained encoder) stay out of the optimizer: no state, no weight decay.
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    step, start_epoch, history = 0, 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            state, history = load_state(d)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, start_epoch = state["step"], state["epoch"] + 1
        log.info("rank %d resumed from epoch %d, step %d", rank, state["epoch"], step)
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    use_amp = device.type == "cuda"

    dataset = ClipDataset(cfg["train_rows"], cfg["clip_len"], cfg.get("crop"), cfg["seed"])
    batch, accum = recipe["batch_size"], recipe.get("grad_accum", 1)
    per_epoch = math.ceil(len(dataset) / world / batch / accum)
    total_steps = recipe.get("max_steps") or recipe["epochs"] * per_epoch
    num_epochs = recipe.get("epochs") or math.ceil(total_steps / per_epoch)

    for epoch in range(start_epoch, num_epochs):
        _maybe_inject_failure(cfg, epoch, rank)
        dataset.epoch = epoch
        order = epoch_order(len(dataset), cfg["seed"], epoch, rank, world)
        model.train()
        t0, seen, losses = time.perf_counter(), 0, []
        for i in range(0, len(order), batch):
            if step >= total_steps:
                break
            items = [dataset[int(j)] for j in order[i:i + batch]]
            x = torch.stack([a for a, _ in items]).to(device)
            y = torch.stack([b for _, b in items]).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = bce_dice_loss(model(x).float(), y) / accum
            loss.backward()
            seen += len(items)
            losses.append(loss.item() * accum)
            if (i // batch + 1) % accum == 0 or i + batch >= len(order):
                for g in optimizer.param_groups:
                    g["lr"] = recipe["lr"] * lr_factor(step, total_steps, recipe)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if rank == 0 and step % 10 == 0:
                    log.info("epoch %d step %d/%d loss %.4f", epoch, step, total_steps, losses[-1])
        elapsed = time.perf_counter() - t0
        # started_at_epoch: where this worker group began (> 0 after a resume), for audits and tests
        metrics = {"epoch": epoch, "started_at_epoch": start_epoch, "step": step,
                   "loss": float(np.mean(losses)) if losses else float("nan"),
                   "lr": optimizer.param_groups[0]["lr"], "clips_per_s_worker": seen / max(elapsed, 1e-9),
                   "clips_per_s": world * seen / max(elapsed, 1e-9)}
        history = history + [metrics]
        last = step >= total_steps or epoch == num_epochs - 1
        if rank == 0 and (last or (epoch + 1) % cfg.get("checkpoint_every_epochs", 1) == 0):
            d = _save_state(model, optimizer, step, epoch, history)
            try:
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
            finally:  # report has copied it into the run's storage; a SAM2 state is hundreds of MB
                shutil.rmtree(d, ignore_errors=True)
        else:
            ray.train.report(metrics)
        if step >= total_steps:
            break


def build_initial_model(model_cfg: dict, seed: int, init_weights: str | None):
    """The 'before fine-tuning' weights: a seeded random init, or a given pre-trained directory."""
    if init_weights:
        return model_class(model_cfg["arch"]).from_pretrained(init_weights)
    torch.manual_seed(seed)
    return build_model(**model_cfg)
