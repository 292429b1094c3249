#!/usr/bin/env python
"""Pipeline benchmarks: wall times of the Snakemake workflow and synthetic generation throughput.

  a  `make run` without the install: `snakemake -j2` on the repo's config.yaml, into a temporary
     working directory (timed as the dataset phase, then the rest of the default target)
  b  a no-op re-run of the same (`Nothing to be done`)
  c  `snakemake -n` (dry run only) for a config of 10,000 videos: 2,500 prompts × 4 generators,
     25 shards each (100 generate + 100 annotate jobs)
  d  synthetic generation throughput in frames/s: one shard through the CLI (including interpreter
     start-up, rendering, H.264 encoding and mask PNGs) and the generator alone (rendering only)

Usage: python scripts/bench_pipeline.py [--only a,b,c,d] [--jobs 2] [--keep]
Every run happens under a temporary directory; the repository's results/ is never touched.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake(workdir: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "--directory", str(workdir), "--nocolor", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{tail}")


def job_total(output: str) -> int | None:
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    return None


def repo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def count_videos(cfg: dict) -> int:
    return cfg["prompts"]["num_prompts"] * len(cfg["generators"])


def bench_run(work: Path, jobs: int) -> None:
    cfg = repo_config()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    v = cfg["video"]
    print(f"(a) make run equivalent: snakemake -j{jobs} on config.yaml "
          f"({cfg['prompts']['num_prompts']} prompts × {len(cfg['generators'])} generators = {count_videos(cfg)} videos, "
          f"{v['width']}x{v['height']}x{v['num_frames']} frames)")
    t_dataset, proc = snakemake(work, f"-j{jobs}", "dataset")
    check(proc, "snakemake dataset")
    n_jobs = job_total(proc.stdout + proc.stderr)
    print(f"    dataset phase (prompts → generate → annotate → dataset, {n_jobs} jobs): {t_dataset:8.1f} s")
    t_rest, proc = snakemake(work, f"-j{jobs}")
    if proc.returncode != 0:
        print(f"    rest of the default target: FAILED after {t_rest:.1f} s (exit {proc.returncode}); last lines:")
        for line in (proc.stdout + proc.stderr).splitlines()[-8:]:
            print(f"      {line}")
        return
    rest_jobs = job_total(proc.stdout + proc.stderr)
    print(f"    rest of the default target (train → predict → evaluate → tables, {rest_jobs} jobs): {t_rest:8.1f} s")
    print(f"    total `snakemake -j{jobs}`: {t_dataset + t_rest:8.1f} s")


def bench_noop(work: Path, jobs: int) -> None:
    if not (work / "config.yaml").exists():
        print("(b) no-op re-run: needs (a) first; skipped")
        return
    t, proc = snakemake(work, f"-j{jobs}")
    check(proc, "no-op snakemake")
    nothing = "Nothing to be done" in proc.stdout + proc.stderr
    print(f"(b) no-op re-run of snakemake -j{jobs}: {t:8.2f} s ({'nothing to be done' if nothing else 'JOBS RAN'})")


def bench_dry_run(work: Path) -> None:
    cfg = repo_config()
    cfg["prompts"]["num_prompts"] = 2500
    cfg["generators"] = [
        {"name": "synth-upsampler", "backend": "synthetic", "family": "upsampler", "shards": 25},
        {"name": "synth-smoother", "backend": "synthetic", "family": "smoother", "shards": 25},
        {"name": "synth-grainy", "backend": "synthetic", "family": "grainy", "shards": 25},
        {"name": "real-camera", "backend": "synthetic", "family": "camera", "shards": 25},
    ]
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t, proc = snakemake(work, "-n")
    check(proc, "snakemake -n")
    total = job_total(proc.stdout + proc.stderr)
    t_q, proc = snakemake(work, "-n", "--quiet", "all")
    check(proc, "snakemake -n --quiet all")
    print(f"(c) snakemake -n, {count_videos(cfg):,} videos (2,500 prompts × 4 generators × 25 shards, {total} jobs): "
          f"{t:6.2f} s  (with --quiet all: {t_q:6.2f} s)")


def bench_throughput(work: Path) -> None:
    cfg = repo_config()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    bv = [sys.executable, "-m", "brokenvideos"]
    subprocess.run([*bv, "prompts", "--config", "config.yaml"], cwd=work, env=env, check=True, capture_output=True)
    gen = next(g for g in cfg["generators"] if g["family"] == "grainy")
    t0 = time.perf_counter()
    proc = subprocess.run([*bv, "generate", "--config", "config.yaml", "--generator", gen["name"], "--shard", "0"],
                          cwd=work, env=env, capture_output=True, text=True)
    t_cli = time.perf_counter() - t0
    check(proc, "brokenvideos generate")
    import pyarrow.parquet as pq

    manifest = pq.read_table(work / f"results/videos/{gen['name']}/shard-0.parquet").to_pandas()
    frames = int(manifest.num_frames.sum())
    v = cfg["video"]
    print(f"(d) synthetic generation, {v['width']}x{v['height']}, {v['num_frames']} frames per video")
    print(f"    one shard through the CLI ({gen['name']} shard 0/{gen.get('shards', 1)}: {len(manifest)} videos, "
          f"{frames} frames, render + H.264 + masks + start-up): {t_cli:6.2f} s = {frames / t_cli:7.1f} frames/s")

    sys.path.insert(0, str(REPO / "src"))
    from brokenvideos.config import derive_seed
    from brokenvideos.generators.synthetic.generator import SyntheticGenerator

    prompts = pq.read_table(work / "results/prompts/prompts.parquet").to_pandas().to_dict("records")
    for family in ("upsampler", "smoother", "grainy", "camera"):
        g = SyntheticGenerator({"name": f"bench-{family}", "family": family}, cfg["video"], cfg["seed"])
        g.render(prompts[0], 0)  # warm the texture cache
        t0 = time.perf_counter()
        n = 0
        for p in prompts:
            frames_, _, _ = g.render(p, derive_seed(cfg["seed"], g.name, p["prompt_id"]))
            n += frames_.shape[0]
        dt = time.perf_counter() - t0
        print(f"    generator alone, family {family:9s} ({len(prompts)} videos, rendering + exact masks, no encoding): "
              f"{n / dt:7.1f} frames/s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the temporary directories (printed)")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    unknown = only - set("abcd")
    if unknown:
        p.error(f"--only: unknown parts {sorted(unknown)}")
    print(f"# bench_pipeline: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    base = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        run_dir = base / "run"
        run_dir.mkdir()
        if "a" in only:
            bench_run(run_dir, args.jobs)
        if "b" in only:
            bench_noop(run_dir, args.jobs)
        if "c" in only:
            (base / "dry").mkdir()
            bench_dry_run(base / "dry")
        if "d" in only:
            (base / "gen").mkdir()
            bench_throughput(base / "gen")
    finally:
        if args.keep:
            print(f"# kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
