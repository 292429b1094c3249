"""Video-classification baselines of He et al. V-A: I3D- and S3D-style 3-D CNNs and their _Res
variants, built from torchvision's video-model blocks.

- ``i3d`` stands for I3D (Carreira & Zisserman, 2017), whose trait is inflated 2-D kernels into full
  3×3×3 spatio-temporal convolutions: torchvision's R3D blocks (``Conv3DSimple`` in a 3-D ResNet).
- ``s3d`` stands for S3D (Xie et al., 2018), whose trait is separable convolutions, spatial 1×3×3
  then temporal 3×1×1: torchvision's R(2+1)D blocks (``Conv2Plus1D``).
- ``_res`` variants are fed frame residuals f_{t+1} - f_t instead of frames (T-1 inputs).

The default widths are small so the nets train from scratch on a CPU; ``torchvision:`` swaps in a
full torchvision model (``r3d_18``, ``r2plus1d_18``, ``mc3_18``, or the real ``s3d``), as the
paper preset does. Weights: from scratch, or from a state-dict file (``weights``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import video as tv_video
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DSimple

from brokenvideos.detect.base import Detector, check, register_to_config
from brokenvideos.errors import InputError

CONV_BUILDERS = {"i3d": Conv3DSimple, "s3d": Conv2Plus1D}
TORCHVISION = ("r3d_18", "r2plus1d_18", "mc3_18", "s3d")


class SmallVideoResNet(nn.Module):
    """A width-configurable torchvision VideoResNet: stem, one stage per width, global pool."""

    def __init__(self, conv_builder, widths, blocks_per_stage: int = 1):
        super().__init__()
        w0 = widths[0]
        if conv_builder is Conv2Plus1D:  # separable stem too, as torchvision's R2Plus1dStem
            mid = max(4, w0 // 2)
            self.stem = nn.Sequential(
                nn.Conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                nn.Conv3d(mid, w0, (3, 1, 1), 1, (1, 0, 0), bias=False), nn.BatchNorm3d(w0), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv3d(3, w0, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                                      nn.BatchNorm3d(w0), nn.ReLU(inplace=True))
        stages, c_in = [], w0
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                down = None
                if stride != 1 or c_in != w:
                    down = nn.Sequential(nn.Conv3d(c_in, w, 1, stride=conv_builder.get_downsample_stride(stride), bias=False),
                                         nn.BatchNorm3d(w))
                stages.append(BasicBlock(c_in, w, conv_builder, stride, down))
                c_in = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W)
        return self.pool(self.stages(self.stem(x))).flatten(1)


class VideoCNN(Detector):
    NAME = "video3d"
    STYLE = "i3d"
    RESIDUAL_INPUT = False

    @register_to_config
    def __init__(self, widths=(16, 32, 64, 128), blocks_per_stage: int = 1, torchvision: str | None = None,
                 weights: str | None = None, clip_len: int = 7):
        super().__init__()
        n = self.NAME
        check(n, "clip_len", clip_len, isinstance(clip_len, int) and clip_len >= 2, "an integer >= 2")
        check(n, "widths", widths, isinstance(widths, (list, tuple)) and len(widths) >= 1
              and all(isinstance(w, int) and w >= 4 for w in widths), "a list of integers >= 4")
        check(n, "torchvision", torchvision, torchvision is None or torchvision in TORCHVISION, f"null or one of {TORCHVISION}")
        self.clip_len = clip_len
        if torchvision:
            self.net = getattr(tv_video, torchvision)(weights=None, num_classes=1)
            self.head = nn.Identity()
        else:
            self.net = SmallVideoResNet(CONV_BUILDERS[self.STYLE], list(widths), blocks_per_stage)
            self.head = nn.Linear(self.net.dim, 1)
        if weights:
            path = Path(weights)
            if not path.exists():
                raise InputError(path, f"{n} weights are missing")
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if unexpected:
                raise InputError(path, f"weights do not fit {n} (unexpected {unexpected[:3]})")

    def clip_input(self, frames: torch.Tensor) -> torch.Tensor:
        if self.RESIDUAL_INPUT:
            x = (frames[:, 1:] - frames[:, :-1]) * 4.0  # residuals are small; scaled to about unit range
        else:
            x = frames - 0.5
        return x.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)

    def logits(self, batch: dict) -> torch.Tensor:
        return self.head(self.net(self.clip_input(batch["frames"]))).reshape(-1)


class I3D(VideoCNN):
    NAME, STYLE, RESIDUAL_INPUT, COST = "i3d", "i3d", False, 1.7


class I3DRes(VideoCNN):
    NAME, STYLE, RESIDUAL_INPUT, COST = "i3d_res", "i3d", True, 1.4


class S3D(VideoCNN):
    NAME, STYLE, RESIDUAL_INPUT, COST = "s3d", "s3d", False, 1.9


class S3DRes(VideoCNN):
    NAME, STYLE, RESIDUAL_INPUT, COST = "s3d_res", "s3d", True, 2.3
