"""What an ingest adapter is: something that lists the videos of one dataset layout on disk.

An adapter only *finds*: it yields one ``Item`` per video (its file or frames folder, labels,
generator and a loader for its masks). Probing the video, checking the masks against it and
writing them is the ingest step's job (``dataset/ingest.py``), so every layout gets the same
checks, the same two passes and the same ``--on-error`` handling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brokenvideos.errors import BrokenVideosError, InputError

# (num_frames, (height, width)) -> (T×H×W uint8 id volume, {id: subcategory}); raises InputError
MaskLoader = Callable[[int, tuple[int, int]], tuple[np.ndarray, dict[int, str]]]


@dataclass(frozen=True)
class Item:
    """One video an adapter found."""

    key: str                     # unique within the dataset; video_id becomes f"{name}-{safe_id(key)}"
    video: Path                  # a video file (mp4, ...) or a folder of frame images (jpg/png, sorted by name)
    generator: str
    label: str | None = None     # broken|normal|real; None: broken if masks are non-empty, else the default label
    prompt_id: str | None = None
    text: str = ""
    masks: MaskLoader | None = None


class Adapter:
    """Base of every ingest format. ``entry`` is the ``dataset.ingest[]`` mapping (name, root,
    format and the format's options), already filled with the schema's defaults by the caller
    where it came through the config; adapters read their options with ``self.option``."""

    format: str = ""
    # option name -> default: the keys this format understands (others are refused, so a typo is
    # not silently ignored); None: the adapter reads ``self.entry`` itself and nothing is checked
    options: dict[str, object] | None = None

    def __init__(self, entry: dict):
        self.entry = dict(entry)
        self.name = str(entry["name"])
        self.root = Path(entry["root"])
        known = {"name", "root", "format", *COMMON_OPTIONS, *(self.options or {})}
        unknown = sorted(set(entry) - known) if self.options is not None else []
        if unknown:
            raise BrokenVideosError(f"dataset.ingest {self.name}: format {self.format!r} does not take "
                                    f"{', '.join(unknown)}; it takes {', '.join(sorted(known - {'name', 'root', 'format'}))}")

    def option(self, key: str):
        value = self.entry.get(key)
        return (self.options or {}).get(key, COMMON_OPTIONS.get(key)) if value is None else value

    def items(self) -> Iterator[Item]:
        """Every video, in a stable order; may be called twice and must yield the same items.
        A bad layout raises InputError(path, one line saying what was found)."""
        raise NotImplementedError

    def require_root(self) -> Path:
        if not self.root.is_dir():
            raise InputError(self.root, "ingest root is not a directory")
        return self.root


# options every format takes (handled by the ingest step, not the adapter)
COMMON_OPTIONS: dict[str, object] = {"default_label": "normal", "on_error": "stop", "fps": 24, "encode": False}


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
