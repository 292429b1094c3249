"""Faults lose nothing (issue 16, item 8): one run SIGKILLed once in each phase — generate,
annotate, dataset, train, predict, evaluate — at a seeded random moment inside a job of that phase,
then unlocked and resumed with --rerun-incomplete, ends with the same outputs as a clean run:
tables, masks, videos and metrics byte for byte, weights tensor for tensor.

Training is killed once a checkpoint is registered, so its resumed run continues from that
checkpoint. What may differ is named in SKIPPED_* and VOLATILE below: logs, Snakemake benchmarks,
Ray's checkpoint folders, wall-clock fields and the epoch a resumed worker group began at.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_snakemake, snakemake_cmd, train_section, write_config
from fixtures.scale.procs import registered_checkpoints

SEED = 16  # the kill moments; printed so a failure can be replayed
PHASES = ["generate_shard", "annotate_shard", "dataset", "train_localizer", "predict_localizer",
          "evaluate_predictions"]
TARGET = "tables"
# Not outputs: per-run diagnostics (logs, timings), Ray's own checkpoint bookkeeping, and the plot
# of training throughput (clips/s is wall-clock).
SKIPPED_DIRS = {"benchmarks", "ray"}
SKIPPED_SUFFIXES = {".log", ".tsv"}
SKIPPED_FILES = {"tables/figures/training_curves.png"}
# Wall-clock fields of otherwise deterministic JSON/CSV records.
VOLATILE = {"seconds", "items_per_s", "job_seconds", "wall_seconds", "elapsed_s", "train_seconds", "started",
            "finished", "timestamp", "time_s", "duration_s", "clips_per_s", "clips_per_s_worker",
            "started_at_epoch"}  # the epoch a (resumed) worker group began at: what the test checks
TRAIN_OUT = Path("results/train/st_unet")


def write_run_config(workdir: Path) -> Path:
    # A clip of 8 frames and 4 epochs (a checkpoint each): training lasts ~60 s, a third of it
    # Ray's start.
    return write_config(workdir, prompts={"num_prompts": 12, "normal_fraction": 0.25},
                        video={"width": 64, "height": 48, "num_frames": 8, "fps": 6, "qp": 18},
                        train=train_section(overrides={"epochs": 4, "batch_size": 2, "warmup_steps": 1}),
                        dataset={"split": {"by": "ratios", "train": 0.6, "val": 0.2, "test": 0.2}},
                        evaluate={"split": "test", "baselines": ["empty"]})


def started_rules(log: Path) -> list[str]:
    """Rules whose jobs Snakemake has started, in order, from its own output."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("rule", "localrule") and words[1].endswith(":"):
            out.append(words[1][:-1])
    return out


def kill_inside(workdir: Path, rule: str, delay: float, attempt: int, ready=lambda: True) -> bool:
    """Start (or resume) the run; SIGKILL its process group ``delay`` s after a job of ``rule``
    has started and ``ready()`` holds. Returns False if the run ended before that."""
    log = workdir / f"snakemake-{attempt}.out"
    with open(log, "w") as fh:
        proc = subprocess.Popen(snakemake_cmd(workdir, "-j2", "--rerun-incomplete", TARGET), cwd=workdir,
                                start_new_session=True, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        try:
            while rule not in started_rules(log) or not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
            time.sleep(delay)
            assert proc.poll() is None, f"the run ended within {delay:.2f} s of starting {rule}"
        finally:
            # the whole group, as a crash or an OOM kill would take it: Snakemake and its jobs
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the job was killed before its outputs were complete: Snakemake must notice on resume
    assert (workdir / ".snakemake" / "incomplete").is_dir()
    assert run_snakemake(workdir, "--unlock").returncode == 0
    return True


def outputs(root: Path) -> dict[str, Path]:
    files = {}
    for p in sorted((root / "results").rglob("*")):
        rel = p.relative_to(root / "results")
        if p.is_file() and not SKIPPED_DIRS & set(rel.parts) and p.suffix not in SKIPPED_SUFFIXES \
                and rel.as_posix() not in SKIPPED_FILES:
            files[rel.as_posix()] = p
    return files


def scrub(value):
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def same_content(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".json":
        return scrub(json.loads(a.read_text())) == scrub(json.loads(b.read_text()))
    if a.suffix == ".csv":  # training curves: the loss column must agree, wall-clock columns may not
        da, db = pd.read_csv(a), pd.read_csv(b)
        keep = [c for c in da.columns if c not in VOLATILE]
        return list(da.columns) == list(db.columns) and da[keep].equals(db[keep])
    if a.suffix in (".pt", ".pth", ".safetensors"):
        return tensors_equal(a, b)
    return False


def tensors_equal(a: Path, b: Path) -> bool:
    if a.suffix == ".safetensors":
        from safetensors.torch import load_file

        sa, sb = load_file(a), load_file(b)
    else:
        sa, sb = torch.load(a, map_location="cpu", weights_only=False), torch.load(b, map_location="cpu",
                                                                                    weights_only=False)
        sa, sb = sa.get("model", sa), sb.get("model", sb)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_a_run_killed_in_every_phase_ends_as_a_clean_run(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for d in (clean, killed):
        write_run_config(d)
    done = run_snakemake(clean, "-j2", TARGET, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    rng = random.Random(SEED)
    for attempt, rule in enumerate(PHASES):
        if rule == "train_localizer":
            # inside the training loop: once a checkpoint is registered, within the next epoch or two,
            # so that the resumed run continues from that checkpoint and must still end identical
            delay, ready = rng.uniform(0.0, 0.5), lambda: registered_checkpoints(killed / TRAIN_OUT) >= 1
        else:  # inside the job: after the CLI has started (≥ 1 s of imports), before short jobs end
            delay, ready = rng.uniform(1.0, 2.0), lambda: True
        assert kill_inside(killed, rule, delay, attempt, ready), f"seed {SEED}: the run ended before {rule} started"
    done = run_snakemake(killed, "-j2", "--rerun-incomplete", TARGET, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    # the killed training did resume from its checkpoint, not start over
    assert pd.read_csv(killed / TRAIN_OUT / "metrics.csv").started_at_epoch.max() > 0

    want, got = outputs(clean), outputs(killed)
    assert sorted(got) == sorted(want), set(got) ^ set(want)
    differ = [rel for rel in want if not same_content(want[rel], got[rel])]
    assert not differ, f"seed {SEED}: outputs differ from a clean run: {differ}"
    # and nothing half-written survived for a later run to trust
    leftovers = [rel for rel in got if Path(rel).name.startswith((".tmp-", ".old-", "tmp"))]
    assert not leftovers, leftovers
