"""Shared fixtures: a tiny valid config, the CLI run in-process, Snakemake run as a subprocess.

Conventions the tests rely on:
- A tiny config lives in its own directory with ``results: results`` (relative), and every step
  runs with that directory as the working directory, exactly as Snakemake runs the CLI. Paths
  inside manifests are then relative, so two runs in two directories can be compared byte for byte.
- Snakemake runs the repository's own Snakefile with ``--directory <workdir>``: the ``configfile:
  "config.yaml"`` directive resolves against the working directory, so the tiny config written
  there is the one used, and ``SRC`` (computed from ``workflow.basedir``) is the repository's
  ``src/`` — the code under test.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

# 10 prompts (3 normal), 64×48, 6 frames: the whole DAG (11 jobs) runs in ~10 s on 2 cores.
TINY_CONFIG: dict = {
    "seed": 0,
    "results": "results",
    "prompts": {"num_prompts": 10, "normal_fraction": 0.3},
    "video": {"width": 64, "height": 48, "num_frames": 6, "fps": 6, "qp": 18},
    "generators": [
        {"name": "synth-upsampler", "backend": "synthetic", "family": "upsampler", "shards": 2},
        {"name": "synth-grainy", "backend": "synthetic", "family": "grainy", "shards": 1},
        {"name": "real-camera", "backend": "synthetic", "family": "camera", "shards": 1},
    ],
    "annotate": {"method": "groundtruth"},
    "dataset": {"split": {"by": "ratios", "train": 0.6, "val": 0.2, "test": 0.2}},
}


# A tiny localizer and the run settings its training shares with any other (config `train`).
TINY_LOCALIZER: dict = {"name": "st_unet", "model": {"arch": "st_unet", "base_channels": 4, "depth": 2},
                        "recipe": "cpu_default", "overrides": {"epochs": 3, "batch_size": 2, "warmup_steps": 1},
                        "clip_len": 4, "crop": [32, 32]}
TINY_RUN: dict = {"ray": {"num_workers": 2, "use_gpu": False, "cpus_per_worker": 1},
                  "checkpoint": {"num_to_keep": 2}, "max_failures": 1}
SHARED_TRAIN_KEYS = ("ray", "checkpoint", "max_failures")


def train_section(*extra_localizers: dict, **changes) -> dict:
    """A `train` config section of one tiny localizer; ``changes`` replace its keys (or the shared
    ``ray``/``checkpoint``/``max_failures``), e.g. ``train_section(max_failures=0, clip_len=8)``."""
    entry = {**copy.deepcopy(TINY_LOCALIZER), **{k: v for k, v in changes.items() if k not in SHARED_TRAIN_KEYS}}
    run = {**copy.deepcopy(TINY_RUN), **{k: v for k, v in changes.items() if k in SHARED_TRAIN_KEYS}}
    return {"localizers": [entry, *extra_localizers], **run}


def tiny_overrides(**changes) -> dict:
    """TINY_LOCALIZER's recipe overrides with ``changes`` (e.g. ``epochs=2``)."""
    return {**TINY_LOCALIZER["overrides"], **changes}


def _merge(base: dict, overrides: dict) -> dict:
    """Nested dict update; lists and scalars are replaced whole."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_config(directory, name: str = "config.yaml", **overrides) -> Path:
    """Write TINY_CONFIG (deep-merged with ``overrides``) to ``directory/name``; return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(_merge(TINY_CONFIG, overrides), sort_keys=False))
    return path


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: ``tiny_config(subdir=None, **overrides) -> Path`` of a valid small config.

    The config is written as ``config.yaml`` in ``tmp_path`` (or ``tmp_path/subdir``); its results
    dir is ``results`` next to it.
    """

    def make(subdir: str | None = None, **overrides) -> Path:
        return write_config(tmp_path / subdir if subdir else tmp_path, **overrides)

    return make


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    @property
    def error(self) -> str:
        """The one `error: …` line (asserts there is exactly one)."""
        lines = self.error_lines
        assert len(lines) == 1, f"expected exactly one 'error:' line, got {lines!r}\n{self.stderr}"
        return lines[0]


def run_cli(args, cwd=None) -> CliResult:
    """``brokenvideos.cli.main(args)`` in-process, in ``cwd``, capturing stdout and stderr.

    The CLI calls ``logging.basicConfig`` which binds a handler to the current ``sys.stderr``; the
    root handlers are reset around the call so every run logs into its own capture.
    """
    from brokenvideos.cli import main

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()
    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old_cwd)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return CliResult(int(code), out.getvalue(), err.getvalue())


def shards_of(config_path) -> list[tuple[str, int]]:
    cfg = yaml.safe_load(Path(config_path).read_text())
    return [(g["name"], k) for g in cfg["generators"] for k in range(g.get("shards", 1))]


def run_generation(config_path) -> list[tuple[str, int]]:
    """prompts + every generate shard, in-process, in the config's directory."""
    workdir = Path(config_path).parent
    result = run_cli(["prompts", "--config", config_path], cwd=workdir)
    assert result.code == 0, result.stderr
    shards = shards_of(config_path)
    for gen, k in shards:
        result = run_cli(["generate", "--config", config_path, "--generator", gen, "--shard", k], cwd=workdir)
        assert result.code == 0, result.stderr
    return shards


def run_pipeline(config_path) -> Path:
    """What `snakemake` runs, as in-process CLI calls: prompts, generate, annotate, dataset.

    Returns the results directory. Shard manifests follow the Snakemake rules' paths.
    """
    workdir = Path(config_path).parent
    shards = run_generation(config_path)
    videos, annotations = [], []
    for gen, k in shards:
        v = f"results/videos/{gen}/shard-{k}.parquet"
        a = f"results/annotations/{gen}/shard-{k}.parquet"
        result = run_cli(["annotate", "--config", config_path, "--videos", v, "--out", a], cwd=workdir)
        assert result.code == 0, result.stderr
        videos.append(v)
        annotations.append(a)
    result = run_cli(["dataset", "--config", config_path, "--videos", *videos, "--annotations", *annotations,
                      "--out-dir", "results/dataset"], cwd=workdir)
    assert result.code == 0, result.stderr
    return workdir / "results"


def snakemake_cmd(workdir, *args) -> list[str]:
    return [str(SNAKEMAKE), "-s", str(SNAKEFILE), "--directory", str(workdir), "--nocolor", *map(str, args)]


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints: {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    counts = {}
    for line in lines[start + 3:]:
        m = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if not m:
            break
        counts[m[1]] = int(m[2])
    return counts


def run_snakemake(workdir, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in ``workdir`` (which holds config.yaml)."""
    return subprocess.run(snakemake_cmd(workdir, *args), capture_output=True, text=True, timeout=timeout,
                          cwd=workdir)


# --- annotate-ui (SAM2 in a browser) ------------------------------------------------------------

UI_T, UI_H, UI_W = 6, 96, 128
UI_CLICK = (35.0, 35.0)  # inside the bright block of frame 0
UI_BOX = (80.0, 55.0, 115.0, 85.0)  # around the green block
UI_SAM2_SEED = 2  # random weights mean nothing; with this seed the clicked pixels land inside the masks
UI_IMAGE_SIZE = 128  # tests: fast; benchmarks/bench_annotate_ui.py measures at 256


@pytest.fixture(scope="session")
def annotate_ui_workspace(tmp_path_factory):
    """Two short videos (a drifting bright block and a green block over noise), a random-weight
    tiny SAM2 saved as a checkpoint file (so the UI and the annotate step load the same weights
    through the real checkpoint rules), and a config whose annotate.sam2 builds it on CPU."""
    import numpy as np
    import pandas as pd
    import torch

    from brokenvideos.annotate.sam2_annotator import Sam2Settings, build_predictor
    from brokenvideos.io.tables import write_table
    from brokenvideos.io.video import sha256_file, write_video

    root = tmp_path_factory.mktemp("annotate_ui")
    rng = np.random.default_rng(0)
    rows = []
    for k, vid in enumerate(["clip-a", "clip-b"]):
        frames = rng.integers(0, 60, (UI_T, UI_H, UI_W, 3)).astype(np.uint8)
        for t in range(UI_T):
            frames[t, 20:50, 20 + 3 * t:60 + 3 * t] = 220
            frames[t, 55:85, 80 + k:115 + k] = (30, 200, 30)
        path = root / "videos" / f"{vid}.mp4"
        path.parent.mkdir(exist_ok=True)
        write_video(path, frames, fps=6)
        rows.append({"video_id": vid, "generator": "tiny", "prompt_id": f"p{k}", "path": str(path), "label": "broken",
                     "fps": 6, "num_frames": UI_T, "width": UI_W, "height": UI_H, "sha256": sha256_file(path),
                     "source": "test", "status": "ok"})
    write_table(pd.DataFrame(rows), root / "videos.parquet", kind="videos")
    sam2 = {"checkpoint": None, "allow_random_weights": True, "image_size": UI_IMAGE_SIZE, "device": "cpu"}
    with torch.random.fork_rng():
        torch.manual_seed(UI_SAM2_SEED)
        model = build_predictor(Sam2Settings(**sam2))
    checkpoint = root / "sam2_tiny_random.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    del model
    sam2 = {"checkpoint": str(checkpoint), "image_size": UI_IMAGE_SIZE, "device": "cpu"}
    config = write_config(root, annotate={"method": "sam2", "sam2": sam2})
    return {"root": root, "config": config, "videos_dir": root / "videos", "videos_parquet": root / "videos.parquet",
            "checkpoint": checkpoint, "sam2": sam2, "rows": rows, "T": UI_T, "H": UI_H, "W": UI_W,
            "click": UI_CLICK, "box": UI_BOX}


# --- no silent skips: a skip whose reason is not on tests/skip_policy.py's allow-list fails the run ---
pytest_plugins = ["skip_policy"]
