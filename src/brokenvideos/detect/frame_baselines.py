"""Spatial baselines of He et al. V-A, applied frame by frame; a clip's score is the mean of its
frames' P(generated).

- CNNSpot (Wang et al., 2020): a ResNet classifier of RGB frames (ResNet-50 in the paper preset).
- NPR (Tan et al., 2024): the same trunk fed the neighbouring-pixel residual x - up(down(x)), with
  nearest-neighbour down- and up-sampling by 2: it keeps only what up-sampling layers leave in
  each 2×2 block, and is exactly zero on an image that is constant on every 2×2 block.

Both train on frames (each frame carries its clip's label, as an image detector would); by default
from scratch, or from ``weights`` (a state-dict file of the trunk).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.models.backbones import Backbone2d
from brokenvideos.detect.base import Detector, check, register_to_config


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """x - up(down(x)) with nearest interpolation by a factor of 2 (odd sizes keep their last row/column)."""
    h, w = x.shape[-2:]
    down = x[..., ::2, ::2]
    up = down.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    return x - up


class CNNSpot(Detector):
    NAME = "cnnspot"
    COST = 0.5
    SCORES_FRAMES = True

    @register_to_config
    def __init__(self, backbone: str = "resnet_small", weights: str | None = None, clip_len: int = 7,
                 train_frames: int | None = None):
        super().__init__()
        check(self.NAME, "clip_len", clip_len, isinstance(clip_len, int) and clip_len >= 1, "an integer >= 1")
        check(self.NAME, "train_frames", train_frames,
              train_frames is None or (isinstance(train_frames, int) and 1 <= train_frames <= clip_len),
              f"null or an integer in [1, clip_len={clip_len}]")
        self.clip_len, self.train_frames = clip_len, train_frames
        self.trunk = Backbone2d(backbone, in_chans=3, weights=weights)
        self.head = nn.Linear(self.trunk.dim, 1)

    def frame_input(self, frames: torch.Tensor) -> torch.Tensor:
        return frames - 0.5

    def frame_logits(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T') logits; in training, ``train_frames`` random frames per clip."""
        if self.training and self.train_frames and self.train_frames < frames.shape[1]:
            idx = torch.randperm(frames.shape[1])[: self.train_frames].sort().values
            frames = frames[:, idx]
        b, t = frames.shape[:2]
        return self.image_logits(frames.flatten(0, 1)).view(b, t)

    def image_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N,) logits, each image on its own."""
        return self.head(self.trunk(self.frame_input(images))).squeeze(1)

    @staticmethod
    def clip_logits(frame_logits: torch.Tensor) -> torch.Tensor:
        """(B, T) frame logits -> (B,) clip logits: the logit of the mean frame probability."""
        return torch.logit(torch.sigmoid(frame_logits).mean(dim=1).clamp(1e-6, 1 - 1e-6))

    def logits(self, batch: dict) -> torch.Tensor:
        return self.clip_logits(self.frame_logits(batch["frames"]))

    @torch.no_grad()
    def score_video(self, frames: torch.Tensor, starts: list[int], batch_size: int = 32) -> torch.Tensor:
        """Overlapping clips share frames: each frame is scored once, then averaged per clip."""
        if not starts:
            return torch.zeros(0)
        n, step = max(starts) + self.clip_len, batch_size * self.clip_len
        per_frame = torch.cat([self.image_logits(frames[i:min(i + step, n)]) for i in range(0, n, step)])
        return torch.sigmoid(self.clip_logits(per_frame[torch.tensor(starts)[:, None] + torch.arange(self.clip_len)]))

    def training_loss(self, batch: dict, target: torch.Tensor) -> torch.Tensor:
        """Per-frame BCE: each frame is one training image, as for an image detector."""
        logits = self.frame_logits(batch["frames"])
        return F.binary_cross_entropy_with_logits(logits, target[:, None].expand_as(logits))


class NPR(CNNSpot):
    NAME = "npr"

    def frame_input(self, frames: torch.Tensor) -> torch.Tensor:
        # residuals are small; scaled so the trunk's first BatchNorm starts near unit variance
        return npr_residual(frames) * 4.0
