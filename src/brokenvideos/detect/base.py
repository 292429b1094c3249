"""Self-describing models, like a diffusers ConfigMixin: kwargs in, config.json + weights out.

``@register_to_config`` on ``__init__`` binds the call against the signature (an unknown or missing
option is a one-line error naming the model and the option), keeps the bound kwargs with their
defaults as ``self.config``, and ``save_pretrained``/``from_pretrained`` round-trip them. Frozen
parts that are rebuilt from their own kwargs (a pre-trained image encoder) are left out of the
weights file (``FROZEN_PREFIXES``); directories a model was built from (the frame predictor) are
copied inside the saved directory, so it is complete on its own.
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import atomic_dir

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.pt"
FORMAT = 1


class OptionError(BrokenVideosError):
    def __init__(self, model: str, key: str, problem: str):
        super().__init__(f"{model}: {key}: {problem}")

    def __reduce__(self):
        return (BrokenVideosError, (str(self),))


def register_to_config(init):
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        name = getattr(type(self), "NAME", type(self).__name__)
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as exc:
            known = [p for p in sig.parameters if p != "self"]
            raise OptionError(name, "options", f"{exc}; known options: {known}") from None
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.config = {k: v for k, v in bound.arguments.items() if k != "self"}

    return wrapper


def read_config(directory) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.exists():
        raise InputError(path, "not a saved model directory (config.json is missing)")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"bad config.json ({exc})") from None
    if not isinstance(cfg, dict) or "name" not in cfg or "kwargs" not in cfg:
        raise InputError(path, "config.json lacks 'name' and 'kwargs'")
    return cfg


class Configurable(nn.Module):
    NAME = "model"
    FROZEN_PREFIXES: tuple[str, ...] = ()  # state-dict keys rebuilt from kwargs, not saved
    DIR_KWARGS: tuple[str, ...] = ()  # kwargs naming directories copied into the saved model

    config: dict

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Prefixes of state keys rebuilt from kwargs alone; a random-init encoder is saved."""
        enc = getattr(self, "encoder", None)
        if enc is not None and str(getattr(enc, "spec", "")).startswith("random:"):
            return ()
        return self.FROZEN_PREFIXES

    def trainable_state(self) -> dict:
        prefixes = self.frozen_prefixes()
        return {k: v for k, v in self.state_dict().items() if not (prefixes and k.startswith(prefixes))}

    def save_pretrained(self, directory) -> None:
        kwargs = dict(self.config)
        with atomic_dir(directory) as tmp:
            for key in self.DIR_KWARGS:
                if kwargs.get(key):
                    shutil.copytree(Path(kwargs[key]), tmp / key)
                    kwargs[key] = key  # relative to the saved directory
            (tmp / CONFIG_NAME).write_text(json.dumps({"name": self.NAME, "format": FORMAT, "kwargs": kwargs},
                                                      indent=2, sort_keys=True) + "\n")
            torch.save(self.trainable_state(), tmp / WEIGHTS_NAME)

    @classmethod
    def from_pretrained(cls, directory):
        directory = Path(directory)
        cfg = read_config(directory)
        if cfg["name"] != cls.NAME:
            raise InputError(directory / CONFIG_NAME, f"holds a {cfg['name']!r}, not a {cls.NAME!r}")
        kwargs = dict(cfg["kwargs"])
        for key in cls.DIR_KWARGS:
            if kwargs.get(key) and not Path(kwargs[key]).is_absolute():
                kwargs[key] = str(directory / kwargs[key])
        model = cls(**kwargs)
        weights = directory / WEIGHTS_NAME
        if not weights.exists():
            raise InputError(weights, "weights file is missing")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(weights, f"cannot read weights ({exc.__class__.__name__})") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        prefixes = model.frozen_prefixes()
        missing = [k for k in missing if not (prefixes and k.startswith(prefixes))]
        if missing or unexpected:
            raise InputError(weights, f"weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
        model.config = cfg["kwargs"] | {k: kwargs[k] for k in cls.DIR_KWARGS if k in kwargs}
        return model.eval()


class Detector(Configurable):
    """Clips in, one logit of P(generated) per clip out.

    ``forward(batch)`` takes a dict with ``frames`` (B, T, 3, H, W) float in [0, 1] and, optionally,
    cached outputs of the detector's frozen parts (``features``: per-frame embeddings of the frozen
    image encoder) so that training does not recompute them; a plain tensor means frames alone.
    """

    NAME = "detector"
    CACHEABLE: tuple[str, ...] = ()  # keys of the batch a feature cache can supply
    COST = 1.0  # relative training cost per clip, for dealing jobs to Ray workers
    clip_len: int = 7

    def logits(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch) -> torch.Tensor:
        if torch.is_tensor(batch):
            batch = {"frames": batch}
        frames = batch.get("frames")
        if frames is None or frames.ndim != 5 or frames.shape[2] != 3:
            shape = None if frames is None else tuple(frames.shape)
            raise BrokenVideosError(f"{self.NAME}: expected frames of shape (B, T, 3, H, W), got {shape}")
        if frames.shape[1] != self.clip_len:
            raise BrokenVideosError(f"{self.NAME}: expected clips of {self.clip_len} frames, got {frames.shape[1]}")
        return self.logits(batch)

    def training_loss(self, batch: dict, target: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy on the clip logit (a detector may override: per-frame for CNNSpot)."""
        return nn.functional.binary_cross_entropy_with_logits(self(batch), target)

    @torch.no_grad()
    def predict_proba(self, batch) -> torch.Tensor:
        return torch.sigmoid(self(batch))

    # True when a clip's score is a function of its frames' independent scores: the frames of a
    # video are then scored once each (``score_video``), not once per overlapping clip.
    SCORES_FRAMES = False

    @torch.no_grad()
    def score_video(self, frames: torch.Tensor, starts: list[int], batch_size: int = 32) -> torch.Tensor:
        """P(generated) of the clips of one video, (N, 3, H, W) frames, starting at ``starts``."""
        out = [self.predict_proba(torch.stack([frames[s:s + self.clip_len] for s in starts[i:i + batch_size]]))
               for i in range(0, len(starts), batch_size)]
        return torch.cat(out) if out else torch.zeros(0)

    def encoder_spec(self) -> dict | None:
        """The frozen encoder whose cached features this detector can use (None: no cache)."""
        return None


def check(model: str, key: str, value, ok: bool, expected: str):
    if not ok:
        raise OptionError(model, key, f"{value!r} is not {expected}")
    return value
