"""He et al. (2024) Section IV: local motion + global appearance, fused by channel attention.

- Local branch (IV-A): the frozen frame predictor's errors R = [r_1 … r_{T-2}] are averaged over
  time, R̂(i, j) = 1/(T-2) Σ_t r_t(i, j), and R̂ goes through a 2-D CNN F_l: f_local = F_l(R̂).
  F_l starts with a fixed high-pass (R̂ minus its 3×3 mean, ``local_highpass``), as forensic CNNs
  start with fixed residual filters: R̂ is dominated by errors at motion boundaries, whose low
  frequencies swamp a generator's trace of about one grey level. Trained alone on the upsampler
  family, f_local scored 56.5 % clip accuracy without the filter and 98.2 % with it.
- Global branch (IV-B, eq. 1): a frozen pre-trained image encoder v per frame, then a trainable
  temporal transformer F_t over the T tokens with learned temporal positions: f_glob.
  ``feature_dropout`` drops encoder features while training: frozen ImageNet features describe
  the scene, and without it the branch memorised the training scenes (training loss 0.002) and
  outvoted f_local in the fusion.
- Fusion (IV-C, eqs. 2-3): f_t = f_local ⊕ f_glob (element-wise sum), ρ = σ(BN(W2 ReLU(BN(W1 f_t)))),
  f_a = ρ ⊗ f_local + (1 - ρ) ⊗ f_glob, W1 ∈ R^{C/r × C}, W2 ∈ R^{C × C/r}, r = 4.
- A binary head on f_a; trained with cross-entropy (one logit + BCE, the same loss for 2 classes).

``fusion`` selects the ablations of Table III: ``glob`` (f_glob only), ``concat`` (f_local and
f_glob concatenated), ``ca`` (the paper's model); ``local`` (f_local only) is extra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.models.backbones import DEFAULT_ENCODER, TINY, Backbone2d, FrozenImageEncoder
from brokenvideos.detect.base import Detector, check, register_to_config
from brokenvideos.detect.cache import predictor_digest
from brokenvideos.detect.predictor import FramePredictor

FUSIONS = ("ca", "concat", "glob", "local")
ERROR_SCALE = 10.0  # prediction errors are a few hundredths; scaled to about unit range


class CAFusion(nn.Module):
    """Channel-attention fusion, eqs. (2)-(3)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.w1 = nn.Linear(channels, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.w2 = nn.Linear(hidden, channels, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)

    def gate(self, f_local: torch.Tensor, f_glob: torch.Tensor) -> torch.Tensor:
        f_t = f_local + f_glob
        return torch.sigmoid(self.bn2(self.w2(torch.relu(self.bn1(self.w1(f_t))))))

    def forward(self, f_local: torch.Tensor, f_glob: torch.Tensor) -> torch.Tensor:
        rho = self.gate(f_local, f_glob)
        return rho * f_local + (1 - rho) * f_glob


class TemporalDefectDetector(Detector):
    NAME = "temporal_defect"
    FROZEN_PREFIXES = ("encoder.",)
    DIR_KWARGS = ("predictor",)
    CACHEABLE = ("features", "error_map")

    @register_to_config
    def __init__(self, predictor: str | None = None, encoder: str = DEFAULT_ENCODER, encoder_input_size=None,
                 local_backbone: str = "resnet_small", local_weights: str | None = None, dim: int = 128,
                 layers: int = 1, heads: int = 4, fusion: str = "ca", reduction: int = 4, clip_len: int = 7,
                 predictor_width: int = 16, dropout: float = 0.1, feature_dropout: float = 0.0,
                 local_highpass: bool = True):
        super().__init__()
        n = self.NAME
        check(n, "fusion", fusion, fusion in FUSIONS, f"one of {FUSIONS}")
        check(n, "clip_len", clip_len, isinstance(clip_len, int) and clip_len >= 3, "an integer >= 3 (two frames predict the third)")
        check(n, "dim", dim, isinstance(dim, int) and dim >= 4 and dim % heads == 0, f"an integer >= 4 divisible by heads={heads}")
        check(n, "reduction", reduction, isinstance(reduction, int) and 1 <= reduction <= dim, f"an integer in [1, dim={dim}]")
        for key, p in (("dropout", dropout), ("feature_dropout", feature_dropout)):
            check(n, key, p, isinstance(p, (int, float)) and 0 <= p < 1, "a number in [0, 1)")
        check(n, "local_highpass", local_highpass, isinstance(local_highpass, bool), "true or false")
        check(n, "layers", layers, isinstance(layers, int) and layers >= 1, "an integer >= 1")
        check(n, "local_backbone", local_backbone, isinstance(local_backbone, str) and local_backbone, "a timm name or one of " + str(sorted(TINY)))
        self.clip_len, self.fusion, self.local_highpass = clip_len, fusion, local_highpass
        self.use_local, self.use_glob = fusion != "glob", fusion != "local"
        if self.use_local:
            # frozen: the predictor learnt real motion once (its own rule) and is never updated here
            self.predictor = FramePredictor.from_pretrained(predictor) if predictor else FramePredictor(width=predictor_width)
            self.predictor.requires_grad_(False)
            self.predictor_digest = predictor_digest(predictor) if predictor else None
            self.local = Backbone2d(local_backbone, in_chans=3, weights=local_weights)
            self.local_proj = nn.Linear(self.local.dim, dim)
        if self.use_glob:
            self.encoder = FrozenImageEncoder(encoder, encoder_input_size)
            # LayerNorm first: pooled CNN features have arbitrary scales per channel
            self.feature_dropout = nn.Dropout(feature_dropout)
            self.token_proj = nn.Sequential(nn.LayerNorm(self.encoder.dim), nn.Linear(self.encoder.dim, dim))
            self.positions = nn.Parameter(torch.zeros(1, clip_len, dim))
            nn.init.normal_(self.positions, std=0.02)
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True)
            self.temporal = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        if fusion == "ca":
            self.ca = CAFusion(dim, reduction)
        self.head = nn.Linear(2 * dim if fusion == "concat" else dim, 1)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.use_local:
            self.predictor.eval()
        return self

    def encoder_spec(self) -> dict | None:
        return {"encoder": self.config["encoder"], "input_size": self.config["encoder_input_size"]} if self.use_glob else None

    def aggregated_error(self, frames: torch.Tensor) -> torch.Tensor:
        """R̂ = mean over t of r_t: (B, T, 3, H, W) -> (B, 3, H, W)."""
        with torch.no_grad():
            return self.predictor.errors(frames).mean(dim=1)

    def f_local(self, batch: dict) -> torch.Tensor:
        err = batch.get("error_map")  # R̂ from the prediction-error cache (same frozen predictor)
        if err is None:
            err = self.aggregated_error(batch["frames"])
        if self.local_highpass:
            err = err - F.avg_pool2d(err, 3, stride=1, padding=1, count_include_pad=False)
        return self.local_proj(self.local(err * ERROR_SCALE))

    def f_glob(self, batch: dict) -> torch.Tensor:
        feats = batch.get("features")
        if feats is None:
            frames = batch["frames"]
            b, t = frames.shape[:2]
            feats = self.encoder(frames.flatten(0, 1)).view(b, t, -1)
        tokens = self.token_proj(self.feature_dropout(feats)) + self.positions
        return self.temporal(tokens).mean(dim=1)

    def logits(self, batch: dict) -> torch.Tensor:
        if self.fusion == "glob":
            fused = self.f_glob(batch)
        elif self.fusion == "local":
            fused = self.f_local(batch)
        else:
            fl, fg = self.f_local(batch), self.f_glob(batch)
            fused = torch.cat([fl, fg], dim=1) if self.fusion == "concat" else self.ca(fl, fg)
        return self.head(fused).squeeze(1)
