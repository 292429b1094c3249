"""The diffusers backend, end to end on a tiny random-weight pipeline (offline, CPU, ~30 s).

The pipeline is saved to disk and loaded back through ``DiffusionPipeline.from_pretrained`` — the
path a real checkpoint takes — so these tests cover loading, seeding, batching, failure isolation,
provenance and the offline error, not a mock.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from brokenvideos.errors import BrokenVideosError
from brokenvideos.generators import build_generator
from brokenvideos.generators.diffusers_backend import (
    PRESETS_PATH,
    DiffusersGenerator,
    config_from_params,
    is_oom,
    load_presets,
    resolve_preset,
)
from fixtures.tiny_t2v import TINY_HEIGHT, TINY_WIDTH, build_tiny_t2v

VIDEO_CFG = {"width": TINY_WIDTH, "height": TINY_HEIGHT, "num_frames": 4, "fps": 8}


def prompt_row(text: str, prompt_id: str = "p0", label: str = "broken") -> dict:
    return {
        "prompt_id": prompt_id, "text": text, "category": "visual", "subcategory": "visual_breakdown",
        "scene": "urban", "subject": "a cat", "action": "walks", "seed": 0, "label": label, "num_regions": 1,
    }


PROMPTS = [prompt_row("a cat walks on a wall", "p0"), prompt_row("the dog and the ball", "p1", "normal"),
           prompt_row("a car turning left at night", "p2")]
SEEDS = [11, 22, 33]


@pytest.fixture(scope="module", autouse=True)
def hf_offline():
    """HF_HUB_OFFLINE=1, also patched into huggingface_hub's constants (read once at import).

    Also one torch thread: the tiny model gains nothing from two, and on a shared 2-core machine
    OpenMP threads contending with other processes slow each call from ~0.3 s to ~10 s.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        import huggingface_hub.constants

        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_t2v_dir(tmp_path_factory):
    return build_tiny_t2v(tmp_path_factory.mktemp("tiny_t2v"))


def tiny_cfg(model_dir, **overrides) -> dict:
    cfg = {
        "name": "tiny", "backend": "diffusers", "shards": 1, "model": str(model_dir),
        "num_inference_steps": 2, "guidance_scale": 7.5, "negative_prompt": "blurry, low quality",
        "scheduler": {"class": "DDIMScheduler", "kwargs": {"timestep_spacing": "trailing"}},
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def gen(tiny_t2v_dir, hf_offline):
    return DiffusersGenerator(tiny_cfg(tiny_t2v_dir), VIDEO_CFG, run_seed=0)


class CallSpy:
    """Stands in for the pipeline: records each call's prompts, optionally fails, else delegates."""

    def __init__(self, pipe, fail=None):
        self.pipe, self.fail, self.calls = pipe, fail, []

    def __call__(self, **kwargs):
        self.calls.append(list(kwargs["prompt"]))
        if self.fail is not None and any("boom" in p for p in kwargs["prompt"]):
            raise self.fail
        return self.pipe(**kwargs)


# ---------------------------------------------------------------- loading


def test_loads_through_from_pretrained(tiny_t2v_dir, monkeypatch):
    import torch
    from diffusers import DiffusionPipeline

    calls = []
    original = DiffusionPipeline.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", spy)
    g = build_generator(tiny_cfg(tiny_t2v_dir), VIDEO_CFG, 0)  # via the registry, as the shard driver does
    assert isinstance(g, DiffusersGenerator)
    (args, kwargs), = calls
    assert args == (str(tiny_t2v_dir),)
    assert kwargs["variant"] is None and kwargs["revision"] is None
    assert kwargs.get("dtype", kwargs.get("torch_dtype")) is torch.float32

    video = g.generate(PROMPTS[0], SEEDS[0])
    assert video.frames.shape == (VIDEO_CFG["num_frames"], TINY_HEIGHT, TINY_WIDTH, 3)
    assert video.frames.dtype == np.uint8 and video.frames.flags["C_CONTIGUOUS"]
    assert video.frames.std() > 0  # a real decode, not a constant
    assert (video.fps, video.label, video.masks, video.instances) == (8, "broken", None, {})
    assert g.batch_size() == 1 and g.describe()["pipeline_class"] == "TextToVideoSDPipeline"


def test_uncached_hub_id_fails_fast_with_fix(tmp_path):
    model_id = "brokenvideos-test/definitely-not-cached-t2v"
    start = time.monotonic()
    with pytest.raises(BrokenVideosError) as info:
        DiffusersGenerator({"name": "wan-1.3b", "backend": "diffusers", "model": model_id}, VIDEO_CFG, 0)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert model_id in message and "wan-1.3b" in message
    assert f"huggingface-cli download {model_id}" in message and "--local-dir" in message
    assert "model:" in message and "config" in message
    assert isinstance(info.value.__cause__, OSError)  # the hub's own error, chained, not swallowed


def test_missing_local_directory_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(BrokenVideosError, match="does not exist"):
        DiffusersGenerator({"name": "x", "backend": "diffusers", "model": str(missing)}, VIDEO_CFG, 0)


def test_unsupported_call_argument_fails_at_construction(tiny_t2v_dir):
    cfg = tiny_cfg(tiny_t2v_dir, pipeline_kwargs={"frame_rate": 25})  # an LTX argument
    with pytest.raises(BrokenVideosError, match="frame_rate"):
        DiffusersGenerator(cfg, VIDEO_CFG, 0)


# ---------------------------------------------------------------- determinism and provenance


def test_same_seed_same_frames_other_seed_differs(gen):
    a = gen.generate(PROMPTS[0], SEEDS[0])
    b = gen.generate(PROMPTS[0], SEEDS[0])
    c = gen.generate(PROMPTS[0], SEEDS[1])
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


def test_params_regenerate_identical_frames(gen, tiny_t2v_dir):
    video = gen.generate(PROMPTS[1], SEEDS[1])
    params = json.loads(json.dumps(video.params))  # what the manifest stores must be plain JSON
    for key in ("model", "model_path", "revision", "variant", "dtype", "scheduler", "num_inference_steps",
                "guidance_scale", "negative_prompt", "height", "width", "num_frames", "fps", "seed", "prompt",
                "diffusers_version", "pipeline_class", "batch_len"):
        assert key in params, key
    assert {k: params["scheduler"][k] for k in ("class", "kwargs")} == {"class": "DDIMScheduler",
                                                                       "kwargs": {"timestep_spacing": "trailing"}}
    assert params["scheduler"]["config"]["timestep_spacing"] == "trailing"
    assert (params["seed"], params["prompt"], params["model_path"]) == (SEEDS[1], PROMPTS[1]["text"], str(tiny_t2v_dir))

    other_video_cfg = {"width": 64, "height": 64, "num_frames": 9, "fps": 30}  # params must win over this
    again = DiffusersGenerator(config_from_params(params), other_video_cfg, run_seed=123)
    redo = again.generate({"text": params["prompt"], "label": "normal"}, params["seed"])
    assert np.array_equal(redo.frames, video.frames)
    assert redo.fps == video.fps


# ---------------------------------------------------------------- batching and failures


def test_batch_matches_one_by_one(tiny_t2v_dir, gen, monkeypatch):
    batched = DiffusersGenerator(tiny_cfg(tiny_t2v_dir, batch_size=3), VIDEO_CFG, 0)
    spy = CallSpy(batched.pipe)
    monkeypatch.setattr(batched, "pipe", spy)
    prompts, seeds = PROMPTS + [prompt_row("a bird", "p3")], SEEDS + [44]
    out = batched.generate_batch(prompts, seeds)
    assert [len(c) for c in spy.calls] == [3, 1]  # batch_size honoured, remainder in its own call
    singles = [gen.generate(p, s) for p, s in zip(prompts, seeds)]
    for got, want, prompt in zip(out, singles, prompts):
        assert isinstance(got, type(want))
        assert got.label == prompt["label"]
        # Same seeds and prompts; only BLAS rounding differs with the batch shape (≤ 1 grey level).
        diff = np.abs(got.frames.astype(int) - want.frames.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01
    assert [v.params["batch_len"] for v in out] == [3, 3, 3, 1]


@pytest.mark.parametrize("error", ["cuda_oom", "runtime_oom"])
def test_oom_fails_only_that_video(tiny_t2v_dir, gen, monkeypatch, error):
    import torch

    exc = (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB") if error == "cuda_oom"
           else RuntimeError("CUDA error: out of memory"))
    batched = DiffusersGenerator(tiny_cfg(tiny_t2v_dir, batch_size=3), VIDEO_CFG, 0)
    spy = CallSpy(batched.pipe, fail=exc)
    monkeypatch.setattr(batched, "pipe", spy)
    prompts = [PROMPTS[0], prompt_row("boom goes the batch", "p9"), PROMPTS[2]]
    out = batched.generate_batch(prompts, SEEDS)
    assert [len(c) for c in spy.calls] == [3, 1, 1, 1]  # the batch, then one by one
    assert isinstance(out[1], Exception) and is_oom(out[1])
    for i in (0, 2):
        assert np.array_equal(out[i].frames, gen.generate(prompts[i], SEEDS[i]).frames)
        assert out[i].params["batch_len"] == 1


def test_generate_raises_what_generate_batch_returns(gen, monkeypatch):
    monkeypatch.setattr(gen, "pipe", CallSpy(gen.pipe, fail=ValueError("bad prompt")))
    with pytest.raises(ValueError):
        gen.generate(prompt_row("boom"), 1)
    assert isinstance(gen.generate_batch([prompt_row("boom")], [1])[0], ValueError)


# ---------------------------------------------------------------- presets


def test_preset_merge_rules():
    entry = {
        "name": "wan", "backend": "diffusers", "preset": "wan2.1-t2v-1.3b", "model": "/models/wan",
        "num_inference_steps": 30, "dtype": {"default": "float16"}, "memory": {"cpu_offload": True},
        "scheduler": {"kwargs": {"flow_shift": 5.0}},
    }
    before = json.dumps(entry, sort_keys=True)
    cfg = resolve_preset(entry)
    assert json.dumps(entry, sort_keys=True) == before  # input untouched
    assert cfg["model"] == "/models/wan" and cfg["num_inference_steps"] == 30
    assert cfg["dtype"] == {"default": "float16", "vae": "float32"}
    assert cfg["scheduler"] == {"class": "UniPCMultistepScheduler", "kwargs": {"flow_shift": 5.0}}
    assert cfg["memory"] == {"cpu_offload": True}
    geometry = (cfg["height"], cfg["width"], cfg["num_frames"], cfg["fps"], cfg["guidance_scale"])
    assert geometry == (480, 832, 81, 16, 5.0)
    assert cfg["negative_prompt"]  # from the preset

    cog = resolve_preset({"name": "c", "preset": "cogvideox-5b", "negative_prompt": "ugly",
                          "scheduler": {"class": "DDIMScheduler"}, "memory": {"cpu_offload": False}})
    assert cog["scheduler"] == {"class": "DDIMScheduler"}  # another class replaces, kwargs do not leak
    assert cog["memory"] == {"cpu_offload": False, "vae_tiling": True}
    assert cog["negative_prompt"] == "ugly" and cog["pipeline_kwargs"] == {"use_dynamic_cfg": True}
    no_negative = resolve_preset({"name": "w", "preset": "wan2.1-t2v-1.3b", "negative_prompt": None})
    assert no_negative["negative_prompt"] is None

    assert resolve_preset({"name": "plain", "model": "m"}) == {"name": "plain", "model": "m"}
    with pytest.raises(BrokenVideosError, match="unknown diffusers preset 'nope'.*wan2.1-t2v-1.3b"):
        resolve_preset({"name": "x", "preset": "nope"})


def test_presets_file_is_complete_and_valid():
    import diffusers

    presets = load_presets(PRESETS_PATH)
    expected = {
        "wan2.1-t2v-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "cogvideox-2b": "THUDM/CogVideoX-2b",
        "cogvideox-5b": "THUDM/CogVideoX-5b", "ltx-video": "Lightricks/LTX-Video",
        "hunyuanvideo": "hunyuanvideo-community/HunyuanVideo", "modelscope-t2v-1.7b": "ali-vilab/text-to-video-ms-1.7b",
        "zeroscope-v2-576w": "cerspense/zeroscope_v2_576w",
    }
    assert {name: p["model"] for name, p in presets.items()} == expected
    for name, p in presets.items():
        for key in ("height", "width", "num_frames", "fps", "num_inference_steps"):
            assert isinstance(p[key], int) and p[key] > 0, (name, key)
        assert isinstance(p["guidance_scale"], float), name
        dtypes = p["dtype"].values() if isinstance(p["dtype"], dict) else [p["dtype"]]
        assert set(dtypes) <= {"float32", "float16", "bfloat16"}, name
        if p.get("scheduler"):
            assert hasattr(diffusers, p["scheduler"]["class"]), name
        assert set(p.get("memory") or {}) <= {"cpu_offload", "vae_tiling", "vae_slicing"}, name


def test_generator_uses_preset(tiny_t2v_dir, monkeypatch):
    from brokenvideos.generators import diffusers_backend

    tiny_preset = {"model": str(tiny_t2v_dir), "num_inference_steps": 3, "guidance_scale": 1.0, "num_frames": 2,
                   "fps": 12, "negative_prompt": None, "scheduler": {"class": "DPMSolverMultistepScheduler", "kwargs": {}}}
    monkeypatch.setattr(diffusers_backend, "load_presets", lambda path=None: {"tiny": tiny_preset})
    g = DiffusersGenerator({"name": "t", "backend": "diffusers", "preset": "tiny", "num_inference_steps": 2},
                           VIDEO_CFG, 0)
    video = g.generate(PROMPTS[0], 5)
    assert video.frames.shape[0] == 2 and video.fps == 12
    p = video.params
    recorded = (p["preset"], p["num_inference_steps"], p["guidance_scale"], p["scheduler"]["class"])
    assert recorded == ("tiny", 2, 1.0, "DPMSolverMultistepScheduler")


# ---------------------------------------------------------------- what ran is what is recorded


def test_full_scheduler_config_is_recorded(tiny_t2v_dir):
    g = DiffusersGenerator(tiny_cfg(tiny_t2v_dir, scheduler={"class": "DPMSolverMultistepScheduler"}), VIDEO_CFG, 0)
    recorded = g.generate(PROMPTS[0], SEEDS[0]).params["scheduler"]
    assert recorded["class"] == "DPMSolverMultistepScheduler"
    assert recorded["config"] == json.loads(json.dumps(dict(g.pipe.scheduler.config), default=str))
    assert recorded["config"]["prediction_type"] == g.pipe.scheduler.config.prediction_type


def test_scheduler_swap_that_changes_the_prediction_type_is_refused(tiny_t2v_dir, monkeypatch):
    import diffusers

    # the tiny ModelScope checkpoint predicts noise; a flow-matching solver would misread it
    with pytest.raises(BrokenVideosError, match="would change how the model's output is read.*flow_matching"):
        DiffusersGenerator(tiny_cfg(tiny_t2v_dir, scheduler={"class": "FlowMatchEulerDiscreteScheduler"}), VIDEO_CFG, 0)

    class VDefaultDDIM(diffusers.DDIMScheduler):  # a solver whose defaults read v-prediction
        @classmethod
        def from_config(cls, config, **kwargs):
            return super().from_config({**dict(config), "prediction_type": "v_prediction"}, **kwargs)

    monkeypatch.setattr(diffusers, "VDefaultDDIM", VDefaultDDIM, raising=False)
    with pytest.raises(BrokenVideosError, match="prediction_type 'epsilon' -> 'v_prediction'"):
        DiffusersGenerator(tiny_cfg(tiny_t2v_dir, scheduler={"class": "VDefaultDDIM"}), VIDEO_CFG, 0)
    # set explicitly, the same change is what the user asked for
    g = DiffusersGenerator(tiny_cfg(tiny_t2v_dir, scheduler={"class": "VDefaultDDIM",
                                                             "kwargs": {"prediction_type": "v_prediction"}}), VIDEO_CFG, 0)
    assert g.pipe.scheduler.config.prediction_type == "v_prediction"


class _FakePipe:
    def __init__(self, name, temporal, spatial, patch):
        self.__class__ = type(name, (_FakePipe,), {})
        self.vae_scale_factor_temporal, self.vae_scale_factor_spatial = temporal, spatial
        self.transformer = type("T", (), {"config": type("C", (), {"patch_size": patch})()})()


@pytest.mark.parametrize("name, patch, frames, size, outcome", [
    ("WanPipeline", (1, 2, 2), 17, (480, 832), {}),
    ("WanPipeline", (1, 2, 2), 16, (480, 832), {"num_frames": 17}),  # Wan's documented rounding
    ("WanPipeline", (1, 2, 2), 17, (40, 832), "divisible by 16"),
    ("CogVideoXPipeline", 2, 49, (480, 720), {}),
    ("CogVideoXPipeline", 2, 16, (480, 720), r"num_frames = 8·k \+ 1, got 16 \(use 9 or 17\)"),
    ("CogVideoXPipeline", 2, 13, (480, 720), r"num_frames = 8·k \+ 1, got 13"),  # 4k+1 is not enough
])
def test_frame_count_and_size_are_checked_before_any_work(name, patch, frames, size, outcome):
    from brokenvideos.generators.diffusers_backend import _check_geometry

    args = {"num_frames": frames, "height": size[0], "width": size[1]}
    pipe = _FakePipe(name, 4, 8, patch)
    if isinstance(outcome, str):
        with pytest.raises(BrokenVideosError, match=outcome):
            _check_geometry(pipe, args, "generator 'x'")
    else:
        assert _check_geometry(pipe, args, "generator 'x'") == outcome


def test_impossible_size_fails_at_construction(tiny_t2v_dir):
    with pytest.raises(BrokenVideosError, match="divisible by"):
        DiffusersGenerator(tiny_cfg(tiny_t2v_dir, height=TINY_HEIGHT + 1), VIDEO_CFG, 0)
