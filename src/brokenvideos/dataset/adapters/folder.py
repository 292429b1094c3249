"""``folder``: any tree of videos, the generic layout.

- videos anywhere under the root (mp4, avi, mov, mkv, webm, m4v); the generator is the parent
  folder's name (the dataset name for videos at the top);
- an optional labels CSV (``labels_csv``): columns ``video`` (path relative to the root, or its
  stem) and ``label``; optional ``generator``, ``prompt_id``, ``text``;
- a folder named ``real`` anywhere on the path gives label and generator ``real`` (VID-AID's
  ``real/`` and ``fake/<generator>/``);
- optional masks (``masks_dir``): ``<masks_dir>/<video stem>/<frame:05d>.png`` (DAVIS palette) and
  ``instances.json``; a video with a non-empty mask is ``broken`` unless the CSV says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.dataset.adapters.base import Adapter, Item, safe_id
from brokenvideos.dataset.adapters.common import video_files
from brokenvideos.errors import InputError
from brokenvideos.io.masks import read_instances, read_video_masks
from brokenvideos.io.tables import LABELS


def read_labels_csv(path) -> dict[str, dict]:
    """``video`` → its row; labels checked here, so a bad row stops before any video is probed."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str).fillna("")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"cannot read labels CSV ({exc})") from None
    if not {"video", "label"} <= set(df.columns):
        raise InputError(path, f"labels CSV needs columns video,label; has {list(df.columns)}")
    for r in df.itertuples():
        if r.label not in LABELS:
            raise InputError(path, f"row {r.Index + 2}: unknown label {r.label!r} (expected one of {', '.join(LABELS)})")
    return {r["video"]: r for r in df.to_dict("records")}


def davis_masks(directory: Path):
    """A mask loader for one ``<frame:05d>.png`` folder (+ optional instances.json); ids without
    an instances.json are ``unknown``."""
    def load(num_frames: int, size: tuple[int, int]):
        vol = read_video_masks(directory, num_frames, size)
        instances = read_instances(directory)
        return vol, instances or {k: "unknown" for k in sorted(set(np.unique(vol).tolist()) - {0})}
    return load


class FolderAdapter(Adapter):
    format = "folder"
    options = {"labels_csv": None, "masks_dir": None}

    def items(self):
        root = self.require_root()
        labels = read_labels_csv(self.option("labels_csv")) if self.option("labels_csv") else {}
        masks_dir = self.option("masks_dir")
        files = video_files(root)
        if not files:
            raise InputError(root, "no video files found")
        for f in files:
            rel = f.relative_to(root)
            meta = labels.get(str(rel)) or labels.get(f.stem) or {}
            real = "real" in [part.lower() for part in rel.parts[:-1]]
            src = Path(masks_dir) / f.stem if masks_dir else None
            yield Item(
                key=str(rel.with_suffix("")), video=f,
                generator=meta.get("generator") or ("real" if real else (rel.parts[-2] if len(rel.parts) > 1 else self.name)),
                label=meta.get("label") or ("real" if real else None),
                prompt_id=meta.get("prompt_id") or f"{self.name}-{safe_id(f.stem)}",
                text=meta.get("text", ""),
                masks=davis_masks(src) if src is not None and src.is_dir() else None)
