"""The annotator interface."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Annotation:
    masks: np.ndarray  # T×H×W uint8 ids, same size as the video
    instances: dict[int, str] = field(default_factory=dict)  # id -> taxonomy subcategory


class Annotator(abc.ABC):
    method: str = ""

    def __init__(self, annotate_cfg: dict, results: str):
        self.cfg = annotate_cfg
        self.results = results

    @abc.abstractmethod
    def annotate(self, video: dict) -> Annotation:
        """``video`` is a videos.parquet row as a dict (path relative to the repository root)."""
