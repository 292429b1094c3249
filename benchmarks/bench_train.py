#!/usr/bin/env python
"""Training throughput (clips/s) through Ray Train with 1 and 2 CPU workers on the built dataset.

Runs a short training (default 8 epochs) per worker count with the config's model and recipe, into
a temporary directory, and prints clips/s over the epochs after the warm-up ones. Warm-up matters:
each worker decodes a video the first time it draws it, and with N workers that takes ~N epochs.
Needs `results/dataset/` (run `make run` or `snakemake dataset` first).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.train.step import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3, help="epochs left out of the average")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--localizer", help="a train.localizers name (default: the first)")
    args = ap.parse_args()
    base = load_config(args.config)
    rows = []
    for n in args.workers:
        cfg = copy.deepcopy(base)
        cfg["train"]["ray"]["num_workers"] = n
        (entry,) = [e for e in cfg["train"]["localizers"] if e["name"] == (args.localizer or
                                                                           cfg["train"]["localizers"][0]["name"])]
        entry["overrides"] = {**entry.get("overrides", {}), "epochs": args.epochs}
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            curves = train(cfg, out, name=entry["name"])
            wall = time.perf_counter() - t0
        import ray

        ray.shutdown()  # the next count gets a cluster of its own size
        steady = curves.iloc[args.warmup:] if len(curves) > args.warmup else curves
        rows.append({"workers": n, "clips_per_s": round(steady.clips_per_s.mean(), 2),
                     "clips_per_s_per_worker": round(steady.clips_per_s_worker.mean(), 2),
                     "wall_s_incl_ray_start": round(wall, 1), "epochs": len(curves)})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if len(rows) > 1:
        print(f"speed-up {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
              f"{rows[-1]['clips_per_s'] / rows[0]['clips_per_s']:.2f}x")


if __name__ == "__main__":
    main()
