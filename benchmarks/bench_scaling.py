#!/usr/bin/env python
"""How cost grows with the number of videos: prints figures, asserts nothing.

  phase   the dataset phase (prompts → generate → annotate → dataset) at 1×, 4×, 16× the default
          video count (72, 288, 1,152 prompts × 4 generators; shards scaled alike), one CLI call
          per job as Snakemake runs them: wall time and peak RSS per step (max over its jobs)
  dryrun  `snakemake -n` wall time at 10,000 and 100,000 videos (2,500 / 25,000 prompts × 4
          generators, 25 / 250 shards each)
  merge   the `dataset` merge (merge_manifests + make_splits) on synthetic manifests of 1,000,
          10,000 and 100,000 rows in 100 shards: wall time and peak RSS of a fresh process

Usage: nice python benchmarks/bench_scaling.py [--only phase,dryrun,merge] [--scales 1,4,16]
Everything runs under a temporary directory. Read peak RSS per row against the row counts:
growth faster than linear shows as a rising per-row figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")


def timed(cmd, cwd) -> tuple[float, float]:
    """(wall s, peak RSS MiB) of one child process, measured with wait4's rusage."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def scaled_config(factor: int) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["prompts"]["num_prompts"] *= factor
    for g in cfg["generators"]:
        g["shards"] = g.get("shards", 1) * factor
    cfg.pop("train", None), cfg.pop("evaluate", None)
    return cfg


def bench_phase(scales) -> None:
    print("\n## dataset phase (one CLI call per job, sequential)\n")
    print("| scale | videos | step | jobs | wall s (sum) | wall s per video | peak RSS MiB (max job) |")
    print("|---|---|---|---|---|---|---|")
    for factor in scales:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            work = Path(tmp)
            cfg = scaled_config(factor)
            (work / "config.yaml").write_text(yaml.safe_dump(cfg))
            shards = [(g["name"], k) for g in cfg["generators"] for k in range(g["shards"])]
            n_videos = cfg["prompts"]["num_prompts"] * len(cfg["generators"])
            bv = [sys.executable, "-m", "brokenvideos"]
            steps = {"prompts": [[*bv, "prompts", "--config", "config.yaml", "--out", "results/prompts/prompts.parquet"]]}
            steps["generate"] = [[*bv, "generate", "--config", "config.yaml", "--generator", g, "--shard", k,
                                  "--prompts", "results/prompts/prompts.parquet",
                                  "--out", f"results/videos/{g}/shard-{k}.parquet"] for g, k in shards]
            steps["annotate"] = [[*bv, "annotate", "--config", "config.yaml", "--videos",
                                  f"results/videos/{g}/shard-{k}.parquet",
                                  "--out", f"results/annotations/{g}/shard-{k}.parquet"] for g, k in shards]
            steps["dataset"] = [[*bv, "dataset", "--config", "config.yaml",
                                 "--videos", *[f"results/videos/{g}/shard-{k}.parquet" for g, k in shards],
                                 "--annotations", *[f"results/annotations/{g}/shard-{k}.parquet" for g, k in shards],
                                 "--out-dir", "results/dataset"]]
            for step, cmds in steps.items():
                runs = [timed(c, work) for c in cmds]
                wall = sum(w for w, _ in runs)
                print(f"| {factor}× | {n_videos} | {step} | {len(cmds)} | {wall:.1f} | {wall / n_videos:.3f} | "
                      f"{max(r for _, r in runs):.0f} |", flush=True)


def bench_dryrun() -> None:
    print("\n## `snakemake -n`\n")
    print("| videos | prompts | shards per generator | jobs | wall s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for n_prompts, shards in [(2_500, 25), (25_000, 250)]:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            cfg = scaled_config(1)
            cfg["prompts"]["num_prompts"] = n_prompts
            for g in cfg["generators"]:
                g["shards"] = shards
            (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(cfg))
            cmd = [SNAKEMAKE, "-s", REPO / "Snakefile", "--directory", tmp, "-n", "dataset"]
            wall, rss = timed(cmd, tmp)
            jobs = 2 * shards * len(cfg["generators"]) + 2
            print(f"| {n_prompts * len(cfg['generators']):,} | {n_prompts:,} | {shards} | {jobs} | {wall:.1f} | "
                  f"{rss:.0f} |", flush=True)


MERGE_CHILD = r"""
import sys, time, resource
from pathlib import Path
from brokenvideos.dataset.step import merge_manifests
from brokenvideos.dataset.splits import make_splits
d = Path(sys.argv[1])
t0 = time.perf_counter()
videos, _ = merge_manifests(sorted(d.glob("v-*.parquet")), sorted(d.glob("a-*.parquet")))
splits = make_splits(videos, {"by": "ratios", "train": 0.7, "val": 0.3, "test": 0.0}, 0)
assert len(splits) == len(videos)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(videos))
"""


def synthetic_manifests(directory: Path, rows: int, shards: int = 100) -> None:
    import numpy as np
    import pandas as pd

    from brokenvideos.io.tables import write_table

    rng = np.random.default_rng(0)
    gens = ["synth-upsampler", "synth-smoother", "synth-grainy", "real-camera"]
    for k in range(shards):
        idx = np.arange(k, rows, shards)
        gen = [gens[i % 4] for i in idx]
        ids = [f"{g}-p{i:06d}" for g, i in zip(gen, idx)]
        label = np.where(np.array(gen) == "real-camera", "real", rng.choice(["broken", "normal"], len(idx), p=[0.75, 0.25]))
        videos = pd.DataFrame({"video_id": ids, "generator": gen, "prompt_id": [f"p{i // 4:06d}" for i in idx],
                               "path": [f"results/videos/{g}/{v}.mp4" for g, v in zip(gen, ids)], "label": label,
                               "fps": 8, "num_frames": 16, "width": 128, "height": 96,
                               "sha256": [f"{i:064x}" for i in idx], "source": "synthetic", "status": "ok", "error": ""})
        ann = pd.DataFrame({"video_id": ids, "mask_dir": [f"results/masks/{v}" for v in ids], "num_instances": 1,
                            "annotator": "groundtruth", "status": "ok", "error": ""})
        write_table(videos, directory / f"v-{k:03d}.parquet", kind="videos")
        write_table(ann, directory / f"a-{k:03d}.parquet", kind="annotations")


def bench_merge() -> None:
    print("\n## `dataset` merge (merge_manifests + make_splits), fresh process\n")
    print("| rows | wall s | peak RSS MiB | RSS KiB per row (above a 1,000-row run) |")
    print("|---|---|---|---|")
    base = None
    for rows in [1_000, 10_000, 100_000]:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            synthetic_manifests(Path(tmp), rows)
            out = subprocess.run([sys.executable, "-c", MERGE_CHILD, tmp], env=ENV, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            wall, rss, n = out.stdout.split()
            base = float(rss) if base is None else base
            per_row = "" if rows == 1_000 else f"{(float(rss) - base) * 1024 / (rows - 1_000):.2f}"
            print(f"| {int(n):,} | {float(wall):.2f} | {float(rss):.0f} | {per_row} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="phase,dryrun,merge")
    ap.add_argument("--scales", default="1,4,16")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"load at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    only = set(args.only.split(","))
    if "merge" in only:
        bench_merge()
    if "dryrun" in only:
        bench_dryrun()
    if "phase" in only:
        bench_phase([int(s) for s in args.scales.split(",")])
    print(f"\nload at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
