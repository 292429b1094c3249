"""The spread over training seeds of a detector's own-generator accuracy, from a run's caches.

    python benchmarks/bench_detect_seeds.py [--config config.yaml] [--detector temporal_defect] [--seeds 3]

Retrains the detector on each generator's training set with seeds seed, seed+1, ... (in this
process, without Ray; the same training code as `detect-train`), scores each on the test set of
its own generator as `detect-evaluate` does, and prints clip accuracy at 0.5 and AUC per seed, and
their range. Seed `seed` (the config's) is the model `make run` trains. It needs the run's splits,
frame predictor, feature store and prediction-error cache (`make run`, or `snakemake detect_features`).
A figure that decides something should be read with this spread: a floating-point difference
between two machines moves training as a change of seed does.
"""

from __future__ import annotations

import argparse
import time

import torch

from brokenvideos.config import load_config
from brokenvideos.detect import detector_class
from brokenvideos.detect.cache import read_prediction_errors
from brokenvideos.detect.data import generated_generators
from brokenvideos.detect.feature_store import read_store, store_meta
from brokenvideos.detect.loop import train_in_process
from brokenvideos.detect.metrics import detection_metrics
from brokenvideos.detect.scoring import clipset_for, score_clipset
from brokenvideos.detect.settings import detect_settings
from brokenvideos.detect.train_step import cache_meta, detector_jobs
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths, backbone_slug


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--detector", default="temporal_defect", help="a run name in detect.detectors")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    settings, paths = detect_settings(cfg), ResultPaths(cfg["results"])
    table = read_table(paths.detect_splits, kind="splits")
    store = paths.feature_index(backbone_slug(settings["encoder"]))  # the detectors' encoder
    feature_meta, features = read_store(store)
    error_meta, errors = read_prediction_errors(paths.detect_errors)
    caches = {"features": features, "errors": errors}
    jobs = {j["trainset"]: j for j in detector_jobs(settings, table, args.detector, paths.detect_predictor / "model",
                                                      store_meta(store), cache_meta(paths.detect_errors))}
    test = table[table.split == "test"]
    print(f"{args.detector}: own-generator clip accuracy at 0.5 (%) and AUC, seeds {cfg['seed']}..{cfg['seed'] + args.seeds - 1}")
    for gen in generated_generators(table):
        job, accs, aucs, t0 = jobs[gen], [], [], time.perf_counter()
        rows = test[(test.generator == gen) | (test.is_generated == 0)].to_dict("records")
        for k in range(args.seeds):
            state, _ = train_in_process(job, caches, cfg["seed"] + k)
            model = detector_class(job["detector"])(**job["kwargs"])
            model.load_state_dict(state, strict=False)
            clips = clipset_for(model, rows, settings, features, feature_meta, errors, error_meta, crop=settings["eval_crop"])
            m = detection_metrics(score_clipset(model, clips), 0.5)
            accs.append(100 * m["accuracy_clip"]), aucs.append(m["auc"])
        print(f"  {gen}: " + " ".join(f"{a:.2f}" for a in accs) + f"  (range {min(accs):.2f}-{max(accs):.2f}, "
              f"spread {max(accs) - min(accs):.2f}); AUC " + " ".join(f"{a:.4f}" for a in aucs)
              + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
