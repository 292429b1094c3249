"""Frozen feature backbones for detection, behind one call: ``frozen_encoder(spec, input_size)``.

Two kinds, told apart by the model's config, not by its name:

- **frame** encoders (``FrozenImageEncoder``: the default EfficientNet-Lite0, timm models, SigLIP or
  any transformers image model): one feature per frame, (T, D); VID-AID's video feature is their
  mean over frames.
- **clip** encoders (VideoMAE, a transformers model whose config has ``num_frames`` and
  ``tubelet_size``): one feature per video, (1, D). The clip is ``num_frames`` frames spread evenly
  over the video (repeated when the video is shorter), prepared by the model's own saved image
  processor (resize, centre crop, normalise), and the feature is the mean of the last hidden
  states over the tokens (VideoMAE's own mean pooling).

``revision`` names the weights a feature came from: the hub commit when the model has one, and
always a digest of the weights themselves, so a store never mixes two versions of one spec.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from brokenvideos.models.backbones import EncoderUnavailable, FrozenImageEncoder, to_tensor


def _hf_config(spec: str) -> dict | None:
    """The saved transformers config.json of an ``hf:`` spec or a directory, or None for other specs."""
    ident = spec[3:] if spec.startswith("hf:") else spec
    if not (spec.startswith("hf:") or Path(spec).is_dir()):
        return None
    if Path(ident).is_dir():
        path = Path(ident) / "config.json"
        return json.loads(path.read_text()) if path.exists() else None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(ident, local_files_only=True).to_dict()
    except Exception:
        return None  # the loader below fails with the one-line reason


def is_clip_config(cfg: dict | None) -> bool:
    return bool(cfg) and "num_frames" in cfg and "tubelet_size" in cfg


class FrozenVideoEncoder(nn.Module):
    """A clip's embedding from a frozen transformers video model: frames (T, H, W, 3) uint8 -> (1, D)."""

    kind_of_feature = "clip"

    def __init__(self, spec: str):
        super().__init__()
        from transformers import AutoImageProcessor, AutoModel

        self.spec = spec
        ident = spec[3:] if spec.startswith("hf:") else spec
        try:
            self.model = AutoModel.from_pretrained(ident, local_files_only=True)
            self.processor = AutoImageProcessor.from_pretrained(ident, local_files_only=True)
        except Exception as exc:
            raise EncoderUnavailable(spec, f"not in the local Hugging Face cache or not a model directory with "
                                           f"its image processor ({exc.__class__.__name__})") from None
        self.model.eval().requires_grad_(False)
        self.num_frames = int(self.model.config.num_frames)
        self.input_size = None
        self.dim = int(self.model.config.hidden_size)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()
        return self

    def sample(self, num_frames: int) -> np.ndarray:
        return np.linspace(0, num_frames - 1, self.num_frames).round().astype(int)

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> np.ndarray:
        clip = [frames[i] for i in self.sample(len(frames))]
        pixels = self.processor(clip, return_tensors="pt")["pixel_values"]
        hidden = self.model(pixel_values=pixels.to(next(self.model.parameters()).device)).last_hidden_state
        return hidden.mean(dim=1).float().cpu().numpy()


class FrameEncoder(FrozenImageEncoder):
    """``FrozenImageEncoder`` with the store's per-video call: frames (T, H, W, 3) uint8 -> (T, D)."""

    kind_of_feature = "frame"

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        x = to_tensor(frames)
        device = self.mean.device
        return torch.cat([self(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]).numpy()


def frozen_encoder(spec: str, input_size=None) -> FrameEncoder | FrozenVideoEncoder:
    """The encoder for a spec (see ``models.backbones``); fails at once, with one line, when it is missing."""
    if is_clip_config(_hf_config(spec)):
        return FrozenVideoEncoder(spec)
    return FrameEncoder(spec, input_size)


def revision(encoder: nn.Module) -> str:
    """``sha256:<16 hex>`` of the weights in state-dict order, after the hub commit when there is one."""
    digest = hashlib.sha256()
    for key, tensor in encoder.model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    commit = getattr(getattr(encoder.model, "config", None), "_commit_hash", None)
    return (f"{commit}+" if commit else "") + f"sha256:{digest.hexdigest()[:16]}"
