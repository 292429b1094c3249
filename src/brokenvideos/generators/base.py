"""The generator interface every backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GeneratedVideo:
    frames: np.ndarray  # T×H×W×3 uint8 RGB
    fps: int
    label: str  # broken | normal | real (what was asked for; annotation decides masks)
    masks: np.ndarray | None = None  # T×H×W uint8 ids when the generator knows them exactly
    instances: dict[int, str] = field(default_factory=dict)  # id -> taxonomy subcategory
    params: dict = field(default_factory=dict)  # everything needed to regenerate, for the manifest


class VideoGenerator(abc.ABC):
    """Turns one prompt row into one video. Subclasses set ``backend``."""

    backend: str = ""

    def __init__(self, gen_cfg: dict, video_cfg: dict, run_seed: int):
        self.name = gen_cfg["name"]
        self.gen_cfg = gen_cfg
        self.video_cfg = video_cfg
        self.run_seed = run_seed

    @abc.abstractmethod
    def generate(self, prompt: dict, seed: int) -> GeneratedVideo:
        """Render ``prompt`` (a prompts.parquet row as a dict) deterministically from ``seed``."""

    def generate_batch(self, prompts: list[dict], seeds: list[int]) -> list[GeneratedVideo | Exception]:
        """Backends that batch (diffusers) override this; a failure is returned, not raised, per video."""
        out: list[GeneratedVideo | Exception] = []
        for prompt, seed in zip(prompts, seeds):
            try:
                out.append(self.generate(prompt, seed))
            except Exception as exc:  # recorded per video; the shard goes on
                out.append(exc)
        return out

    def batch_size(self) -> int:
        return 1

    def describe(self) -> dict:
        """Generator-level parameters recorded in every manifest row."""
        return {"backend": self.backend}


def is_oom(exc: BaseException) -> bool:
    """Out of (GPU) memory, recognised without importing torch: torch.OutOfMemoryError or its
    RuntimeError message."""
    if any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()
