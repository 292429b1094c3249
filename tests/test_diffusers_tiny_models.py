"""The Wan 2.1 and CogVideoX presets, run by the `generate` step on tiny random-weight pipelines.

Each generator entry names the real preset (``wan2.1-t2v-1.3b``, ``cogvideox-2b``) and overrides
only what makes it fast on a CPU: the model directory, a small legal geometry, 2 steps, float32
(the presets' bfloat16/float16 are GPU settings). Everything else (negative prompt, scheduler swap,
VAE tiling, pipeline kwargs) is the preset's.

The step runs twice: in this process, where torch has already run (it built the models and runs
the pipelines) and with torch's flush-denormal mode on, and in a fresh ``python -m brokenvideos
generate`` subprocess. The mp4s must be byte-identical (issue 9: after torch had run in a process,
or with flush-denormal on, the same frames encoded to different bytes), and the manifest must
record the geometry the video really has. A third test: the Wan preset on a checkpoint that ships
FlowMatchEuler (diffusers' own test setup) is refused, since its UniPC swap would misread the model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_cli, write_config
from fixtures.tiny_wan_cogvideox import (
    COGVIDEOX_GEOMETRY,
    WAN_GEOMETRY,
    build_tiny_cogvideox,
    build_tiny_wan,
)

from brokenvideos.generators.diffusers_backend import load_presets
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import probe_video, read_video

# name -> (preset, builder, (height, width, num_frames), pipeline class)
MODELS = {
    "tiny-wan": ("wan2.1-t2v-1.3b", build_tiny_wan, WAN_GEOMETRY, "WanPipeline"),
    "tiny-cogvideox": ("cogvideox-2b", build_tiny_cogvideox, COGVIDEOX_GEOMETRY, "CogVideoXPipeline"),
}
NUM_PROMPTS = 2  # one broken, one normal, per generator


def generator_entry(name: str, model_dir) -> dict:
    preset, _, (height, width, num_frames), _ = MODELS[name]
    return {"name": name, "backend": "diffusers", "shards": 1, "preset": preset, "model": str(model_dir),
            "height": height, "width": width, "num_frames": num_frames, "num_inference_steps": 2,
            "device": "cpu", "dtype": "float32"}


@pytest.fixture(scope="module")
def offline():
    """HF_HUB_OFFLINE=1 (also in huggingface_hub's constants, read once at import) and one torch
    thread in this process: the tiny models gain nothing from two, and on a shared 2-core machine
    contending OpenMP threads make each video ~10x slower. (Measured: the frames are the same with
    1 and 2 threads; what these tests vary is the process history, not thread counts.)"""
    import huggingface_hub.constants
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory, offline):
    root = tmp_path_factory.mktemp("tiny_video_models")
    for name, (_, build, _, _) in MODELS.items():
        build(root / "models" / name)
    return root


def workdir_with_prompts(workdir, generators, prompts_from=None):
    """A config in ``workdir`` and its prompts (made by the prompts step, or copied from
    ``prompts_from`` so that two working directories get identical ones)."""
    write_config(workdir, prompts={"num_prompts": NUM_PROMPTS, "normal_fraction": 0.5}, generators=generators)
    prompts = "results/prompts/prompts.parquet"
    if prompts_from is None:
        made = run_cli(["prompts", "--config", "config.yaml"], cwd=workdir)
        assert made.code == 0, made.stderr
    else:
        (workdir / prompts).parent.mkdir(parents=True)
        shutil.copy(prompts_from / prompts, workdir / prompts)
    return workdir


@pytest.fixture(scope="module")
def runs(models_root):
    """One config in two working directories (``inproc`` and ``fresh``, same prompts), and the
    fresh-process `generate` of each generator started in the background, so that it overlaps
    with the in-process runs. Yields (dirs, {name: (Popen, log file)})."""
    generators = [generator_entry(name, models_root / "models" / name) for name in MODELS]
    dirs = {"inproc": workdir_with_prompts(models_root / "inproc", generators)}
    dirs["fresh"] = workdir_with_prompts(models_root / "fresh", generators, prompts_from=dirs["inproc"])

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",  # as in this process (see offline)
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    procs = {}
    for name in MODELS:
        log = open(dirs["fresh"] / f"{name}.log", "w")
        procs[name] = (subprocess.Popen(
            [sys.executable, "-m", "brokenvideos", "generate", "--config", "config.yaml", "--generator", name,
             "--shard", "0"], cwd=dirs["fresh"], env=env, stdout=log, stderr=subprocess.STDOUT), log)

    yield dirs, procs
    for proc, log in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def manifest(workdir, name):
    return read_table(workdir / f"results/videos/{name}/shard-0.parquet", kind="videos").sort_values("video_id")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_preset_on_tiny_model_same_mp4_in_process_and_fresh_process(runs, name):
    dirs, procs = runs
    preset_name, _, (height, width, num_frames), pipeline_class = MODELS[name]
    preset = load_presets()[preset_name]

    # This process has built the models and (for the second model) already run a pipeline; it also
    # runs the step with torch's flush-denormal mode on, which issue 9 saw change x264's bytes.
    import torch

    start = time.monotonic()
    denormal = torch.set_flush_denormal(True)
    try:
        done = run_cli(["generate", "--config", "config.yaml", "--generator", name, "--shard", "0"],
                       cwd=dirs["inproc"])
    finally:
        torch.set_flush_denormal(False)
    assert done.code == 0, done.stderr[-3000:]
    in_process_s = time.monotonic() - start
    proc, _ = procs[name]
    proc.wait(timeout=600)  # the fresh process imports torch and diffusers: ~15 s of CPU
    assert proc.returncode == 0, (dirs["fresh"] / f"{name}.log").read_text()[-3000:]

    ours, fresh = manifest(dirs["inproc"], name), manifest(dirs["fresh"], name)
    assert len(ours) == NUM_PROMPTS and (ours.status == "ok").all()
    assert sorted(ours.label) == ["broken", "normal"]
    # Same prompts, seeds and code: every column equal, mp4 bytes included.
    assert ours.reset_index(drop=True).equals(fresh.reset_index(drop=True))
    for row in ours.itertuples():
        a, b = (dirs["inproc"] / row.path).read_bytes(), (dirs["fresh"] / row.path).read_bytes()
        assert a == b, (f"{row.path}: mp4 bytes differ between the in-process run (flush-denormal "
                        f"{'on' if denormal else 'unsupported'}) and the fresh-process run")

        # The manifest records what the video really is, and what the pipeline was asked for.
        decoded = read_video(dirs["inproc"] / row.path)
        assert decoded.shape == (row.num_frames, row.height, row.width, 3) == (num_frames, height, width, 3)
        assert decoded.std() > 0  # a real decode, not a constant
        params = json.loads(row.video_params)
        assert (params["num_frames"], params["height"], params["width"]) == (num_frames, height, width)
        assert probe_video(dirs["inproc"] / row.path)["fps"] == row.fps == params["fps"] == preset["fps"]

        # The preset's settings are the ones that ran.
        assert params["preset"] == preset_name and params["pipeline_class"] == pipeline_class
        assert params["negative_prompt"] == preset["negative_prompt"]
        assert params["guidance_scale"] == preset["guidance_scale"]
        assert params["scheduler"]["class"] == preset["scheduler"]["class"]
        scheduler_config = params["scheduler"]["config"]
        for key, value in preset["scheduler"]["kwargs"].items():
            assert scheduler_config[key] == value, key
        tiling = bool(preset.get("memory", {}).get("vae_tiling"))  # CogVideoX: on, and it really tiles
        assert params["memory"] == {"cpu_offload": False, "vae_tiling": tiling, "vae_slicing": False}
        assert params["pipeline_kwargs"] == preset.get("pipeline_kwargs", {})
    print(f"{name}: {NUM_PROMPTS} videos in-process in {in_process_s:.1f} s")


def test_wan_preset_refuses_a_flow_match_euler_checkpoint(models_root):
    """Issue 9 point 10: on a checkpoint that ships FlowMatchEuler (as diffusers' own Wan test
    builds it), the preset's ``UniPCMultistepScheduler.from_config`` swap gives an epsilon solver on
    a flow-matching model. The step must refuse it with one error line before any video."""
    model = build_tiny_wan(models_root / "models" / "tiny-wan-flow-match-euler", scheduler="diffusers-tests")
    assert json.loads((model / "scheduler" / "scheduler_config.json").read_text())["_class_name"] == (
        "FlowMatchEulerDiscreteScheduler")
    workdir = workdir_with_prompts(models_root / "refused", [generator_entry("tiny-wan", model)])
    done = run_cli(["generate", "--config", "config.yaml", "--generator", "tiny-wan", "--shard", "0"], cwd=workdir)
    assert done.code == 2, done.stderr[-3000:]
    assert "tiny-wan" in done.error and "prediction_type" in done.error and "flow" in done.error
    assert not list((workdir / "results").rglob("*.mp4"))
