"""The frame predictor P(f_t, f_{t+1}) -> f̂_{t+2} of He et al. IV-A, trained on real videos only.

The paper uses a pre-trained DMVFN; here a small two-scale U-Net predicts the change from f_{t+1},
trained with L1 on real videos (the "normal" motion of a camera), then frozen. Its errors
r_t = f̂_t - f_t are small where motion is as predictable as a real camera's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.detect.base import Configurable, check, register_to_config


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.SiLU())


class FramePredictor(Configurable):
    NAME = "frame_predictor"

    @register_to_config
    def __init__(self, width: int = 16):
        super().__init__()
        check(self.NAME, "width", width, isinstance(width, int) and width >= 4, "an integer >= 4")
        # inputs: f_t, f_{t+1} and their difference (the motion to extrapolate)
        self.enc1 = _block(9, width)
        self.enc2 = _block(width, 2 * width)
        self.dec = _block(3 * width, width)
        self.out = nn.Conv2d(width, 3, 1)
        nn.init.zeros_(self.out.weight)  # starts as "the next frame repeats the last"
        nn.init.zeros_(self.out.bias)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) x2 in [0, 1] -> predicted next frame (N, 3, H, W)."""
        h, w = f0.shape[-2:]
        x = torch.cat([f0, f1, f1 - f0], dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(F.avg_pool2d(e1, 2, ceil_mode=True))
        up = F.interpolate(e2, size=(h, w), mode="bilinear", align_corners=False)
        return f1 + self.out(self.dec(torch.cat([e1, up], dim=1)))

    def errors(self, frames: torch.Tensor) -> torch.Tensor:
        """Prediction errors of a clip: (B, T, 3, H, W) -> R = [r_3, ..., r_T] as (B, T-2, 3, H, W)."""
        b, t, c, h, w = frames.shape
        f0 = frames[:, :-2].reshape(-1, c, h, w)
        f1 = frames[:, 1:-1].reshape(-1, c, h, w)
        pred = self(f0, f1)
        return (pred - frames[:, 2:].reshape(-1, c, h, w)).view(b, t - 2, c, h, w)
