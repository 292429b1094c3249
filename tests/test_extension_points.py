"""Extension points: modules that do not need torch do not load it, library layers do not reach
into training, a saved localizer carries its own inference settings, and DVC's code deps are
derived from what each stage runs."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_pipeline

PACKAGE = REPO / "src" / "brokenvideos"


def test_tables_do_not_load_torch():
    code = "import brokenvideos.report.tables, sys; assert 'torch' not in sys.modules, 'torch loaded'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("layer", ["models", "metrics", "report", "dataset", "io", "prompts"])
def test_library_layers_do_not_import_train(layer):
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.startswith("brokenvideos.train")]
    assert not offenders, offenders


def test_prediction_uses_the_clip_length_the_model_was_saved_with(tiny_config, monkeypatch):
    import torch

    from brokenvideos.config import load_config
    from brokenvideos.models import load_inference_settings, save_inference_settings
    from brokenvideos.models import predict as predict_mod
    from brokenvideos.models.st_unet import SpatioTemporalUNet

    cfg_path = tiny_config(video={"width": 64, "height": 48, "num_frames": 20, "fps": 6})
    run_pipeline(cfg_path)
    weights = cfg_path.parent / "model"
    torch.manual_seed(0)
    SpatioTemporalUNet(base_channels=4, depth=2).save_pretrained(weights)
    save_inference_settings(weights, clip_len=16, crop=None)
    assert load_inference_settings(weights) == {"clip_len": 16, "crop": None}

    seen = []
    real = SpatioTemporalUNet.forward

    def spy(self, x):
        seen.append(x.shape[1])
        return real(self, x)

    monkeypatch.setattr(SpatioTemporalUNet, "forward", spy)
    monkeypatch.chdir(cfg_path.parent)
    cfg = load_config(cfg_path)
    predict_mod.predict_split(cfg, cfg_path.parent / "pred", "val", weights=weights)
    assert seen and set(seen) == {16}


def test_a_directory_without_a_saved_localizer_is_named(tmp_path):
    from brokenvideos.errors import BrokenVideosError
    from brokenvideos.models import load_inference_settings, load_pretrained

    with pytest.raises(BrokenVideosError, match="config.json: not a saved localizer"):
        load_pretrained(tmp_path)
    with pytest.raises(BrokenVideosError, match="inference.json: missing"):
        load_inference_settings(tmp_path)


def test_dvc_code_deps_are_the_derived_ones():
    proc = subprocess.run([sys.executable, str(REPO / "scripts/dvc_deps.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _dvc_changed(root: Path) -> dict[str, set[str]]:
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc), "status", "--json"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for stage, changes in json.loads(proc.stdout or "{}").items():
        for change in changes:
            if isinstance(change, dict) and "changed deps" in change:
                out.setdefault(stage.split(":")[-1], set()).update(change["changed deps"])
    return out


@pytest.mark.slow
def test_touching_io_makes_dvc_report_every_stage_that_imports_it(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    import dvc_deps

    root = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files + ["scripts/dvc_deps.py", "dvc.yaml"]:
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, root / f)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    # Record a lock for this tree: placeholder outputs, then `dvc commit` hashes deps and outs. The
    # stages as DVC resolves them (a foreach stage is one stage per localizer: train@0, ...).
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        resolved = {stage.name: [Path(o.fs_path) for o in stage.outs] for stage in repo.index.stages
                    if hasattr(stage, "name")}  # dvc.yaml stages, not data.dvc
    for outs in resolved.values():
        for out in outs:
            if out.suffix:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text("{}\n")
            else:
                out.mkdir(parents=True, exist_ok=True)
                (out / "placeholder").write_text("x\n")
    stages = sorted(resolved)
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc), "commit", "-f", "-q", *stages], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    before = {s: d for s, d in _dvc_changed(root).items() if s in stages}
    assert not before, before
    with open(root / "src/brokenvideos/io/video.py", "a") as fh:
        fh.write("\n# touched\n")
    after = _dvc_changed(root)
    newly = {s for s, deps in after.items() if "src/brokenvideos/io" in deps - before.get(s, set())}
    stages = set(stages)
    expected = {s for s in stages if "src/brokenvideos/io" in dvc_deps.code_deps(s.split("@")[0])}
    assert expected == stages  # every step reads or writes through io/
    assert newly == expected
