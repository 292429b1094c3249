"""The videos the tool may open, looked up by id: a request never carries a path.

``--videos`` is a folder of ``*.mp4`` (id = file stem) or a videos manifest (the ``videos``
contract). Ids must be plain names, since they become folder names under ``--out``.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from brokenvideos.errors import InputError
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import probe_video, read_video

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
DECODED_VIDEOS_KEPT = 4  # decoded clips held in memory (frames are served from RAM)


@dataclass(frozen=True)
class VideoEntry:
    video_id: str
    path: Path
    num_frames: int
    width: int
    height: int
    label: str | None = None

    def to_json(self) -> dict:
        return {"video_id": self.video_id, "num_frames": self.num_frames, "width": self.width,
                "height": self.height}


def _check_id(video_id: str, source) -> str:
    if not SAFE_ID.fullmatch(video_id) or ".." in video_id:
        raise InputError(source, f"video id {video_id!r} is not a plain name (letters, digits, . _ -)")
    return video_id


class Catalogue:
    def __init__(self, entries: list[VideoEntry]):
        self.entries = {e.video_id: e for e in sorted(entries, key=lambda e: e.video_id)}
        self._frames: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, source) -> Catalogue:
        source = Path(source)
        if source.is_dir():
            files = sorted(source.glob("*.mp4"))
            if not files:
                raise InputError(source, "no *.mp4 videos in this folder")
            entries = []
            for f in files:
                info = probe_video(f)
                entries.append(VideoEntry(_check_id(f.stem, f), f, info["num_frames"], info["width"], info["height"]))
            return cls(entries)
        if source.suffix == ".parquet":
            df = read_table(source, kind="videos")
            if df.video_id.duplicated().any():
                raise InputError(source, f"duplicate video ids {sorted(set(df.video_id[df.video_id.duplicated()]))}")
            entries = [VideoEntry(_check_id(str(r["video_id"]), source), Path(r["path"]), int(r["num_frames"]),
                                  int(r["width"]), int(r["height"]), r.get("label"))
                       for r in df.to_dict("records") if r.get("status", "ok") == "ok"]
            return cls(entries)
        raise InputError(source, "--videos must be a folder of .mp4 files or a videos .parquet manifest")

    def get(self, video_id: str) -> VideoEntry | None:
        return self.entries.get(video_id)

    def frames(self, video_id: str) -> np.ndarray:
        """T×H×W×3 RGB, decoded once and kept for the last few videos opened."""
        with self._lock:
            if video_id in self._frames:
                self._frames.move_to_end(video_id)
                return self._frames[video_id]
        entry = self.entries[video_id]
        frames = read_video(entry.path)
        if frames.shape[:3] != (entry.num_frames, entry.height, entry.width):
            raise InputError(entry.path, f"decodes to {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}, "
                                         f"manifest says {entry.num_frames} of {entry.width}x{entry.height}")
        with self._lock:
            self._frames[video_id] = frames
            while len(self._frames) > DECODED_VIDEOS_KEPT:
                self._frames.popitem(last=False)
        return frames

    def frame_jpeg(self, video_id: str, index: int, quality: int = 90) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(self.frames(video_id)[index]).save(buf, format="JPEG", quality=quality)
        return buf.getvalue()
