"""Same bytes on every machine: golden hashes of rendered frames, masks and mp4s, and output that
does not depend on thread counts, BLAS core types or what ran earlier in the process.

The golden file is updated only deliberately (a renderer change):
    BROKENVIDEOS_UPDATE_GOLDEN=1 python -m pytest tests/test_same_bytes.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli, write_config

from brokenvideos.config import derive_seed
from brokenvideos.generators.synthetic.generator import SyntheticGenerator
from brokenvideos.io.video import sha256_file, write_video

GOLDEN = Path(__file__).parent / "golden" / "synthetic.json"
VIDEO = {"width": 128, "height": 96, "num_frames": 16, "fps": 8}  # the embedded default's size
# (family, subcategory, scene): every renderable subcategory, every family, normal and real videos
CASES = [
    ("upsampler", "visual_breakdown", "human"), ("upsampler", "symbol_confusion", "urban"),
    ("upsampler", "attribute_shift", "vehicle"), ("smoother", "motion_anomaly", "fauna_flora"),
    ("smoother", "style_inconsistency", "virtual"), ("smoother", "uncanny_valley", "human"),
    ("grainy", "logical_disjunction", "robotic"), ("grainy", "perceptual_overload", "natural_landscape"),
    ("grainy", "visual_breakdown", "urban"), ("grainy", "normal", "human"),
    ("camera", "normal", "vehicle"), ("camera", "motion_anomaly", "human"),
]


def _h(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def render_case(family, subcategory, scene, tmp_dir: Path) -> dict:
    gen = SyntheticGenerator({"name": f"synth-{family}", "backend": "synthetic", "family": family}, VIDEO, 0)
    prompt_id = f"{family}-{subcategory}"
    prompt = {"prompt_id": prompt_id, "seed": derive_seed("golden", prompt_id), "scene": scene,
              "subcategory": subcategory, "num_regions": 0 if subcategory == "normal" else 2,
              "label": "normal" if subcategory == "normal" else "broken"}
    video = gen.generate(prompt, seed=derive_seed(0, gen.name, prompt_id))
    mp4 = tmp_dir / f"{prompt_id}.mp4"
    write_video(mp4, video.frames, video.fps)
    return {"frames": [_h(f) for f in video.frames], "masks": [_h(m) for m in video.masks],
            "instances": {str(k): v for k, v in video.instances.items()}, "mp4": sha256_file(mp4)}


def test_golden_hashes_of_frames_masks_and_mp4(tmp_path):
    got = {f"{f}/{s}": render_case(f, s, scene, tmp_path) for f, s, scene in CASES}
    if os.environ.get("BROKENVIDEOS_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(got)
    for name in sorted(golden):  # name the first video and frame that differ
        for kind in ("frames", "masks"):
            for t, (want, have) in enumerate(zip(golden[name][kind], got[name][kind])):
                assert want == have, f"{name}: {kind} differ first at frame {t}"
        assert golden[name]["instances"] == got[name]["instances"], f"{name}: instances differ"
        assert golden[name]["mp4"] == got[name]["mp4"], f"{name}: frames equal, mp4 bytes differ"


ENCODE = """
import hashlib, sys
import numpy as np
from brokenvideos.io.video import write_video
rng = np.random.default_rng(3)
frames = np.clip(rng.normal(128, 50, (12, 64, 96, 3)), 0, 255).astype(np.uint8)
frames[:, 10:40, 20:60] = rng.integers(0, 256, (12, 30, 40, 3), dtype=np.uint8) // 16 * 16
if sys.argv[1] == "after-torch":
    import torch
    torch.set_flush_denormal(True)  # what some of torch's kernels leave behind
    x = torch.randn(256, 256)
    for _ in range(5):
        x = torch.tanh(x @ x * 1e-3)
    torch.nn.functional.conv2d(torch.randn(1, 3, 64, 64), torch.randn(8, 3, 3, 3))
hashes = set()
for i in range(4):
    write_video(f"{sys.argv[2]}/v{i}.mp4", frames, fps=8)
    hashes.add(hashlib.sha256(open(f"{sys.argv[2]}/v{i}.mp4", "rb").read()).hexdigest())
print(" ".join(sorted(hashes)))
"""


def _python(code, *args, env=None):
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_encoding_does_not_depend_on_what_ran_before(tmp_path):
    (tmp_path / "fresh").mkdir()
    (tmp_path / "torch").mkdir()
    fresh = _python(ENCODE, "fresh", tmp_path / "fresh")
    after = _python(ENCODE, "after-torch", tmp_path / "torch")
    assert len(fresh) == 1 and after == fresh


GENERATE = """
import sys
from brokenvideos.cli import main
for name, shards in (("synth-upsampler", 2), ("synth-grainy", 1), ("real-camera", 1)):
    for k in range(shards):
        assert main(["generate", "--config", "config.yaml", "--generator", name, "--shard", str(k)]) == 0
"""

THREAD_ENVS = {
    "unset": {},
    "omp1": {"OMP_NUM_THREADS": "1"},
    "blas1": {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "haswell": {"OPENBLAS_CORETYPE": "Haswell"},
}


@pytest.mark.slow
def test_generate_gives_the_same_bytes_at_any_thread_count(tmp_path):
    trees = {}
    for name, extra in THREAD_ENVS.items():
        work = tmp_path / name
        write_config(work)
        assert run_cli(["prompts", "--config", "config.yaml"], cwd=work).code == 0
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")}
        proc = subprocess.run([sys.executable, "-c", GENERATE], cwd=work, capture_output=True, text=True,
                              env={**env, "PYTHONPATH": str(REPO / "src"), **extra}, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        trees[name] = {str(p.relative_to(work)): sha256_file(p)
                       for p in sorted((work / "results").rglob("*")) if p.is_file() and p.suffix != ".log"}
    base = trees.pop("unset")
    assert any(k.endswith(".mp4") for k in base)
    for name, tree in trees.items():
        differ = [k for k in base if tree.get(k) != base[k]]
        assert not differ, f"{name}: {len(differ)} files differ, first {differ[0]}"
