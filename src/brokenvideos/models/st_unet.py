"""A small spatio-temporal U-Net that trains from scratch on a CPU.

Per-frame 2-D encoder/decoder with skip connections; temporal convolutions at every scale let a
frame see its neighbours (most artifacts are defined by change over time: jumps, flicker, drift).
Frame differences are fed as extra channels for the same reason. Two options make it learn much
faster on a CPU (measured in the README): ``global_context`` also shows every frame its difference
from the clip's temporal mean, so a subject that looks as it does in every other frame reads as
normal; ``patch_size`` folds p×p pixels into channels (space-to-depth, lossless) so the U-Net runs
at 1/p resolution and the logits are unfolded back to full resolution. Config-serialisable like a
diffusers component (``Localizer``: ``save_pretrained(dir)`` / ``from_pretrained(dir)``).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from brokenvideos.models.base import Localizer


class TemporalBlock(nn.Module):
    """Conv2d per frame, then residual temporal mixing of each frame with its two neighbours
    (and, with ``global_context``, with its difference from the clip's mean).

    The mixing is a 1×1 Conv2d over [previous, current, next] stacked on channels: the same
    function as a (3, 1, 1) Conv3d, but PyTorch's CPU Conv3d is several times slower.
    """

    def __init__(self, c_in: int, c_out: int, global_context: bool = False):
        super().__init__()
        self.global_context = global_context
        self.spatial = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU(),
        )
        self.temporal = nn.Conv2d((4 if global_context else 3) * c_out, c_out, 1)

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:  # x: (B·T, C, H, W)
        x = self.spatial(x)
        bt, c, h, w = x.shape
        v = x.view(bt // t, t, c, h, w)
        prev = torch.cat([v[:, :1], v[:, :-1]], dim=1)  # edge frames repeat themselves
        nxt = torch.cat([v[:, 1:], v[:, -1:]], dim=1)
        parts = [prev, v, nxt]
        if self.global_context:
            parts.append(v - v.mean(dim=1, keepdim=True))
        stacked = torch.cat(parts, dim=2).view(bt, len(parts) * c, h, w)
        return x + self.temporal(stacked)


class SpatioTemporalUNet(Localizer):
    def __init__(self, base_channels: int = 16, depth: int = 3, use_frame_diff: bool = True,
                 patch_size: int = 1, global_context: bool = False):
        super().__init__()
        self.config = {"arch": "st_unet", "base_channels": base_channels, "depth": depth,
                       "use_frame_diff": use_frame_diff, "patch_size": patch_size, "global_context": global_context}
        self.use_frame_diff, self.patch_size = use_frame_diff, patch_size
        c_in = (6 if use_frame_diff else 3) * patch_size**2
        widths = [base_channels * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        for w in widths:
            self.down.append(TemporalBlock(c_in, w, global_context))
            c_in = w
        self.mid = TemporalBlock(widths[-1], widths[-1], global_context)
        self.up = nn.ModuleList(TemporalBlock(widths[i] + widths[i], widths[i - 1] if i else widths[0], global_context)
                                for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], patch_size**2, 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip: (B, T, 3, H, W) in [0, 1] → logits (B, T, H, W)."""
        b, t, _, h, w = clip.shape
        x = clip
        if self.use_frame_diff:
            prev = torch.cat([clip[:, :1], clip[:, :-1]], dim=1)
            x = torch.cat([clip, clip - prev], dim=2)
        x = x.reshape(b * t, x.shape[2], h, w)
        p = self.patch_size
        if p > 1:
            x = F.pixel_unshuffle(F.pad(x, (0, (-w) % p, 0, (-h) % p), mode="replicate"), p)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x, t)
            skips.append(x)
            if i < len(self.down) - 1:
                x = F.max_pool2d(x, 2)
        x = self.mid(x, t)
        for block, skip in zip(self.up, reversed(skips)):
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1), t)
        logits = self.head(x)
        if p > 1:
            logits = F.pixel_shuffle(logits, p)[..., :h, :w]
        return logits.reshape(b, t, h, w)
