"""What every localizer shares: a directory that describes itself (diffusers' ``from_pretrained``).

A localizer subclasses :class:`Localizer`, sets ``self.config = {"arch": <its name>, **its
constructor arguments}`` in ``__init__``, and maps a clip (B, T, 3, H, W) in [0, 1] to per-pixel
logits (B, T, H, W). ``save_pretrained(dir)`` writes ``config.json`` and ``model.pt``;
``from_pretrained(dir)`` rebuilds it from them with ``weights_only=True`` (no pickled code).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from brokenvideos.models import CONFIG_NAME

WEIGHTS_NAME = "model.pt"


class Localizer(nn.Module):
    config: dict

    def save_pretrained(self, directory) -> None:
        from brokenvideos.io.atomic import atomic_path, write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # Saved through a file object: torch.save(path) names the zip's records after the file, and
        # atomic_path's temporary name is random, so equal weights would give different bytes.
        with atomic_path(directory / WEIGHTS_NAME) as tmp, open(tmp, "wb") as fh:
            torch.save(self.state_dict(), fh)
        write_json(directory / CONFIG_NAME, self.config)

    @classmethod
    def loading_kwargs(cls, config: dict) -> dict:
        """Constructor arguments to rebuild from a saved config (override to skip costly set-up the
        saved weights replace, e.g. loading a pre-trained encoder)."""
        return config

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu"):
        directory = Path(directory)
        cfg = json.loads((directory / CONFIG_NAME).read_text())
        cfg.pop("arch", None)
        model = cls(**cls.loading_kwargs(cfg))
        model.load_state_dict(torch.load(directory / WEIGHTS_NAME, map_location=map_location, weights_only=True))
        return model
