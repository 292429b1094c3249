"""The contract every registered detector keeps (parametrised over brokenvideos.detect.DETECTORS):
deterministic, save -> load gives identical scores, bad input is one clear error, and it can
overfit a tiny set to accuracy 1.0. Tiny random-config backbones only (no weights needed)."""

from __future__ import annotations

import pytest
import torch

from brokenvideos.detect import DETECTORS, build_detector, load_detector
from brokenvideos.detect.base import read_config
from brokenvideos.errors import BrokenVideosError

T = 5
TINY_KWARGS = {
    "temporal_defect": {"encoder": "random:resnet_tiny", "local_backbone": "resnet_tiny", "dim": 16, "heads": 2},
    "cnnspot": {"backbone": "resnet_tiny"},
    "npr": {"backbone": "resnet_tiny"},
    **{n: {"widths": [4, 8]} for n in ("i3d", "i3d_res", "s3d", "s3d_res")},
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: on the shared 2-core machine two intra-op threads spend their time
    waiting for each other (the overfit runs take ~10x longer with 2 threads than with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name: str, **extra):
    torch.manual_seed(0)
    return build_detector(name, clip_len=T, **TINY_KWARGS[name], **extra)


def toy_clips(n: int = 8, size: int = 16, seed: int = 0):
    """Half the clips carry a flickering checkerboard (generated), half are smooth drifts (real)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 1, 3, 1, 1, generator=g) * 0.5 + 0.25
    ramp = torch.linspace(0, 0.2, T).view(1, T, 1, 1, 1)
    clips = (base + ramp).expand(n, T, 3, size, size).clone()
    y = torch.tensor([i % 2 for i in range(n)], dtype=torch.float32)
    checker = ((torch.arange(size)[:, None] + torch.arange(size)[None]) % 2).float() * 0.3
    flicker = torch.tensor([1.0 if t % 2 else -1.0 for t in range(T)]).view(1, T, 1, 1, 1)
    clips[y == 1] = clips[y == 1] + checker * flicker
    return clips.clamp(0, 1), y


def test_every_registered_detector_is_covered():
    assert set(TINY_KWARGS) == set(DETECTORS)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_deterministic(name):
    x, _ = toy_clips(4)
    a, b = tiny(name).eval(), tiny(name).eval()
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), a(x))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_save_load_round_trip(name, tmp_path):
    x, _ = toy_clips(4)
    model = tiny(name).eval()
    model.save_pretrained(tmp_path / "m")
    cfg = read_config(tmp_path / "m")
    assert cfg["name"] == name and cfg["kwargs"]["clip_len"] == T
    again = load_detector(tmp_path / "m")
    assert type(again) is type(model)
    assert torch.equal(model.predict_proba(x), again.predict_proba(x))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_bad_input_is_one_clear_error(name):
    model = tiny(name).eval()
    with pytest.raises(BrokenVideosError, match=name) as err:
        model(torch.rand(2, T, 16, 16))  # no channel axis
    assert "\n" not in str(err.value)
    with pytest.raises(BrokenVideosError, match=f"clips of {T} frames"):
        model(torch.rand(2, T + 1, 3, 16, 16))
    with pytest.raises(BrokenVideosError, match="no_such_option") as err:
        build_detector(name, no_such_option=1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_overfits_a_tiny_set(name):
    x, y = toy_clips(8)
    model = tiny(name)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(60):
        model.train()
        loss = model.training_loss({"frames": x}, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = ((model.predict_proba(x) >= 0.5).float() == y).float().mean().item()
    assert acc == 1.0, f"{name}: accuracy {acc} after 60 steps (loss {loss.item():.3f})"


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scoring_a_whole_video_gives_each_clips_own_score(name):
    """score_video (what detect-evaluate and `brokenvideos detect` call) = the clips scored one by
    one; a detector that scores frames passes each frame of the video through its trunk once."""
    x, _ = toy_clips(1, size=16)
    video = torch.cat([x[0], x[0].flip(0), x[0][:3]])  # 13 frames
    starts = [0, 2, 4, 6, 8]  # overlapping clips; frames 11 and 12 are in none
    model = tiny(name).eval()
    seen = []
    if model.SCORES_FRAMES:
        model.trunk.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    got = model.score_video(video, starts, batch_size=2)
    frames_through_trunk = sum(seen)
    one_by_one = torch.cat([model.predict_proba(video[s:s + T][None]) for s in starts])
    torch.testing.assert_close(got, one_by_one, rtol=0, atol=1e-6)
    if model.SCORES_FRAMES:
        assert frames_through_trunk == max(starts) + T  # 11, against 25 clip by clip
