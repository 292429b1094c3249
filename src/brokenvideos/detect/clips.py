"""Clip batches for detectors: frames (cropped), cached frozen outputs when they fit, labels.

Index i -> clip i of the table's clips (every video, starts every ``stride`` frames); its crop is
reproducible from (seed, epoch, i). With a prediction-error cache, R̂ is cropped at the frames'
crop; encoder features are of the full frames (the frozen encoder always sees whole frames).
"""

from __future__ import annotations

import numpy as np
import torch

from brokenvideos.detect.cache import to_tensor
from brokenvideos.detect.data import check_clip_length, clip_starts, load_frames


class ClipSet:
    def __init__(self, rows: list[dict], clip_len: int, stride: int, crop=None, seed: int = 0,
                 features: dict | None = None, errors: dict | None = None, random_crop: bool = True,
                 decoded: dict | None = None):
        """``decoded``: video_id -> frames already read, shared between sets of the same videos
        (filled in with the videos this set reads)."""
        self.clip_len, self.crop, self.seed, self.random_crop = clip_len, crop, seed, random_crop
        self.features, self.errors = features, errors
        self.epoch = 0
        decoded = {} if decoded is None else decoded
        for r in rows:
            vid = r["video_id"]
            if vid not in decoded:
                decoded[vid] = load_frames(r["path"], clip_len)
            check_clip_length(r["path"], decoded[vid], clip_len)  # it may have been read for shorter clips
        self.frames = {r["video_id"]: decoded[r["video_id"]] for r in rows}
        self.items = [(r["video_id"], s, int(r["is_generated"]))
                      for r in rows for s in clip_starts(len(self.frames[r["video_id"]]), clip_len, stride)]

    def __len__(self) -> int:
        return len(self.items)

    def _window(self, h: int, w: int, i: int):
        if not self.crop:
            return 0, 0, h, w
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        if self.random_crop:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        return (h - ch) // 2, (w - cw) // 2, ch, cw  # centred (evaluation)

    def video_tensor(self, vid: str) -> torch.Tensor:
        """All frames of one video in the evaluation window, which is the same for all its clips."""
        if self.random_crop and self.crop:
            raise ValueError("a random crop differs per clip; score such a set clip by clip")
        frames = self.frames[vid]
        y0, x0, ch, cw = self._window(frames.shape[1], frames.shape[2], 0)
        return to_tensor(frames[:, y0:y0 + ch, x0:x0 + cw])

    def item(self, i: int) -> tuple[dict, float]:
        vid, s, label = self.items[i]
        clip = self.frames[vid][s:s + self.clip_len]
        y0, x0, ch, cw = self._window(clip.shape[1], clip.shape[2], i)
        out = {"frames": to_tensor(clip[:, y0:y0 + ch, x0:x0 + cw])}
        if self.features is not None:
            out["features"] = torch.from_numpy(self.features[vid][s:s + self.clip_len])
        if self.errors is not None:
            out["error_map"] = torch.from_numpy(self.errors[(vid, s)][:, y0:y0 + ch, x0:x0 + cw].astype(np.float32))
        return out, float(label)

    def batch(self, indices) -> tuple[dict, torch.Tensor]:
        items = [self.item(int(i)) for i in indices]
        keys = items[0][0].keys()
        return {k: torch.stack([a[k] for a, _ in items]) for k in keys}, torch.tensor([b for _, b in items])
