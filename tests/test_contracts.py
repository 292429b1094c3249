"""One contract per registry, run over every registered entry (as diffusers' shared test mixins do):
a new generator backend, annotator or localizer gets these checks for free, and a registry entry
with no tiny instance here fails, so none slips through unchecked.

- generators: deterministic in (prompt, seed); frames T×H×W×3 uint8 of the configured size; a bad
  entry fails at construction with a message naming what is wrong;
- annotators: deterministic; masks T×H×W uint8 of the video's size, ids declared in instances;
  a video they cannot annotate raises a one-line error naming it;
- localizers: deterministic; logits B×T×H×W for any frame size; save_pretrained → load_pretrained
  gives identical outputs; a wrong input shape raises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brokenvideos.annotate import METHODS, build_annotator
from brokenvideos.config import derive_seed
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.generators import BACKENDS, build_generator
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.video import write_video
from brokenvideos.models import ARCHS, build_model, load_pretrained

# ---- generators ---------------------------------------------------------------------------------

VIDEO = {"width": 64, "height": 48, "num_frames": 6, "fps": 6}
PROMPT = {"prompt_id": "p00001", "text": "A red car driving along a highway, with the car suddenly jumping.",
          "seed": derive_seed("contract", 1), "scene": "vehicle", "subcategory": "motion_anomaly",
          "num_regions": 2, "label": "broken"}


def _synthetic(tmp_path):
    return {"name": "synth-grainy", "backend": "synthetic", "family": "grainy"}, VIDEO, \
        ({"name": "bad", "backend": "synthetic", "family": "no-such-family"}, "no-such-family")


def _diffusers(tmp_path):
    from fixtures.tiny_t2v import TINY_HEIGHT, TINY_WIDTH, build_tiny_t2v

    model = build_tiny_t2v(tmp_path / "tiny_t2v")
    entry = {"name": "tiny", "backend": "diffusers", "model": str(model), "num_inference_steps": 2,
             "guidance_scale": 7.5, "device": "cpu", "dtype": "float32"}
    video = {"width": TINY_WIDTH, "height": TINY_HEIGHT, "num_frames": 4, "fps": 4}
    return entry, video, ({"name": "bad", "backend": "diffusers", "model": str(tmp_path / "missing")},
                          "does not exist")


GENERATOR_FACTORIES = {"synthetic": _synthetic, "diffusers": _diffusers}


def test_every_generator_backend_has_a_contract_factory():
    assert set(GENERATOR_FACTORIES) == set(BACKENDS)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_generator_contract(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry, video, (bad_entry, bad_words) = GENERATOR_FACTORIES[backend](tmp_path)
    gen = build_generator(entry, video, 0)
    a, b = gen.generate(PROMPT, 7), gen.generate(PROMPT, 7)
    assert a.frames.dtype == np.uint8
    assert a.frames.shape == (video["num_frames"], video["height"], video["width"], 3)
    assert np.array_equal(a.frames, b.frames) and a.params == b.params
    assert a.label in ("broken", "normal", "real")
    if a.masks is not None:
        assert a.masks.shape == a.frames.shape[:3] and a.masks.dtype == np.uint8
        assert set(np.unique(a.masks).tolist()) - {0} == set(a.instances)
    with pytest.raises((BrokenVideosError, ValueError), match=bad_words):
        build_generator(bad_entry, video, 0)


# ---- annotators ---------------------------------------------------------------------------------

T, H, W = 4, 64, 96


@pytest.fixture(scope="module")
def annotated_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract-annotate")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (T, H, W, 3)).astype(np.uint8)
    gt = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        frames[t, 10:30, 10 + 2 * t:40 + 2 * t] = 220
        gt[t, 10:30, 10 + 2 * t:40 + 2 * t] = 1
    write_video(root / "v1.mp4", frames, fps=8)
    write_video_masks(root / "emitted" / "v1", gt, {1: "visual_breakdown"})
    write_video_masks(root / "imported" / "v1", gt, {1: "visual_breakdown"})
    row = {"video_id": "v1", "path": str(root / "v1.mp4"), "label": "broken", "generator": "tiny",
           "prompt_id": "p1", "fps": 8, "num_frames": T, "width": W, "height": H,
           "generated_mask_dir": str(root / "emitted" / "v1")}
    bad = {**row, "video_id": "v9", "path": str(root / "v9.mp4"), "generated_mask_dir": ""}
    return root, row, bad


def _sam2_cfg(root):
    from brokenvideos.annotate.prompts_file import FramePrompt, InstancePrompts, VideoPrompts, write_prompts

    write_prompts(root / "prompts.json", {"v1": VideoPrompts({1: InstancePrompts(
        "visual_breakdown", (FramePrompt(0, ((25.0, 20.0),), (1,)),))})})
    return {"method": "sam2", "sam2": {"checkpoint": None, "allow_random_weights": True, "image_size": 128,
                                       "device": "cpu", "prompts_file": str(root / "prompts.json")}}


ANNOTATOR_FACTORIES = {
    "groundtruth": lambda root: {"method": "groundtruth"},
    "import": lambda root: {"method": "import", "import_dir": str(root / "imported")},
    "sam2": _sam2_cfg,
}


def test_every_annotation_method_has_a_contract_factory():
    assert set(ANNOTATOR_FACTORIES) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_annotator_contract(method, annotated_video):
    root, row, bad = annotated_video
    torch.manual_seed(0)
    annotator = build_annotator(ANNOTATOR_FACTORIES[method](root), str(root / "results"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = annotator.annotate(row), annotator.annotate(row)
    finally:
        torch.set_num_threads(threads)
    assert a.masks.shape == (T, H, W) and a.masks.dtype == np.uint8
    assert np.array_equal(a.masks, b.masks) and a.instances == b.instances
    assert set(np.unique(a.masks).tolist()) - {0} == set(a.instances)
    with pytest.raises((InputError, BrokenVideosError)) as err:
        annotator.annotate(bad)
    message = str(err.value)
    assert "\n" not in message and ("v9" in message)


# ---- localizers ---------------------------------------------------------------------------------

LOCALIZER_KWARGS = {"st_unet": {"base_channels": 4, "depth": 2, "patch_size": 2, "global_context": True},
                    "lite0_unet": {"decoder_channels": 8},
                    "sam2_artifact": {"checkpoint": None, "allow_random_init": True, "image_size": 64}}


def test_every_localizer_has_a_contract_factory():
    assert set(LOCALIZER_KWARGS) == set(ARCHS)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_localizer_contract(arch, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, **LOCALIZER_KWARGS[arch]).eval()
    torch.manual_seed(0)
    again = build_model(arch, **LOCALIZER_KWARGS[arch]).eval()
    for h, w in ((32, 32), (30, 44)):  # any frame size, not only multiples of the stride
        x = torch.rand(2, 5, 3, h, w, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            out = model(x)
            assert out.shape == (2, 5, h, w)
            assert torch.equal(out, again(x))
    model.save_pretrained(tmp_path / "saved")
    loaded = load_pretrained(tmp_path / "saved").eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises((RuntimeError, ValueError)):
        model(torch.rand(2, 3, 32, 32))  # a batch of images, not of clips


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_equal_weights_save_to_equal_bytes(arch, tmp_path):
    """DVC hashes the saved directory: saving the same weights twice must give the same files."""
    torch.manual_seed(0)
    model = build_model(arch, **LOCALIZER_KWARGS[arch])
    model.save_pretrained(tmp_path / "a")
    model.save_pretrained(tmp_path / "b")
    for name in ("config.json", "model.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
