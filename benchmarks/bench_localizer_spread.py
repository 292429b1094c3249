#!/usr/bin/env python
"""How far a localizer's headline figures move with the training seed and the torch thread count.

Trains one `train.localizers` entry (default: the last) on the built dataset once per seed and
thread setting, predicts and evaluates the evaluation split (`evaluate.split`) each time, and prints
broken / normal J&F and artifact-frame J&F per run, then each figure's mean and its largest
deviation from the mean over the seeds, and the difference between 1 and 2 threads per worker.
Needs `results/dataset/` (run `make run` or `snakemake -j2 dataset` first). Each run is a full
training: about as long as that localizer's share of `make run`.

    python benchmarks/bench_localizer_spread.py --seeds 0 1 2 --threads 1 2
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config, localizer_names
from brokenvideos.metrics.evaluate import evaluate_split, summarize
from brokenvideos.models.predict import predict_split
from brokenvideos.train.step import train


def one_run(cfg: dict, name: str, seed: int, threads: int, split: str) -> dict:
    import ray

    cfg = copy.deepcopy(cfg)
    cfg["seed"] = seed
    cfg["train"]["ray"]["cpus_per_worker"] = threads
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train(cfg, tmp / "train", name=name)
        ray.shutdown()  # the next run gets a cluster of its own size
        predict_split(cfg, tmp / "pred", split, weights=tmp / "train" / "final")
        per_video = evaluate_split(cfg, tmp / "pred", split, cfg["evaluate"]["protocol"], cfg["evaluate"]["normal_target"])
    s = summarize(per_video)
    broken = per_video[per_video.label == "broken"].drop_duplicates("video")
    return {"seed": seed, "threads": threads, "broken J&F": s["broken"]["J&F"], "normal J&F": s["normal"]["J&F"],
            "artifact-frame J&F": round(float(broken.JF_artifact.mean()), 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--localizer", help="a train.localizers name (default: the last)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per Ray worker")
    args = ap.parse_args()
    cfg = load_config(args.config)
    name = args.localizer or localizer_names(cfg)[-1]
    split = cfg["evaluate"]["split"]
    runs = [one_run(cfg, name, seed, args.threads[0], split) for seed in args.seeds]
    runs += [one_run(cfg, name, args.seeds[0], t, split) for t in args.threads[1:]]
    table = pd.DataFrame(runs)
    print(f"{name} on the {split} split")
    print(table.to_string(index=False))
    figures = ["broken J&F", "normal J&F", "artifact-frame J&F"]
    by_seed = table[table.threads == args.threads[0]]
    for f in figures:
        mean = by_seed[f].mean()
        print(f"{f}: mean over seeds {mean:.4f}, largest deviation {(by_seed[f] - mean).abs().max():.4f}", end="")
        if len(args.threads) > 1:
            base = by_seed[by_seed.seed == args.seeds[0]][f].iloc[0]
            other = table[(table.threads == args.threads[1]) & (table.seed == args.seeds[0])][f].iloc[0]
            print(f"; threads {args.threads[0]} vs {args.threads[1]}: {other - base:+.4f}", end="")
        print()


if __name__ == "__main__":
    main()
