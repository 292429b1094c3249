"""Training clips: T consecutive frames of a video with their binary artifact targets.

Normal videos are trained on too, with all-zero targets (BrokenVideos 4.1 trains on 748 clean
videos so the model learns to say "nothing here").
"""

from __future__ import annotations

import numpy as np
import torch

from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.video import read_video

CENTRED_CROP_SHARE = 0.33


def load_video_and_target(row: dict) -> tuple[np.ndarray, np.ndarray]:
    frames = read_video(row["path"])
    masks = read_video_masks(row["mask_dir"], len(frames), frames.shape[1:3])
    return frames, (masks > 0).astype(np.uint8)


class ClipDataset(torch.utils.data.Dataset):
    """Index i → one random clip (and crop) of video i, reproducible from (seed, epoch, i)."""

    def __init__(self, rows: list[dict], clip_len: int, crop: tuple[int, int] | None, seed: int):
        self.rows, self.clip_len, self.crop, self.seed = rows, clip_len, crop, seed
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def _load(self, i):
        if i not in self._cache:  # tiny videos: decode once per worker
            self._cache[i] = load_video_and_target(self.rows[i])
        return self._cache[i]

    def __getitem__(self, i):
        frames, target = self._load(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        t = len(frames)
        start = int(rng.integers(0, max(1, t - self.clip_len + 1)))
        idx = np.clip(np.arange(start, start + self.clip_len), 0, t - 1)
        x, y = frames[idx], target[idx]
        if self.crop:
            ch, cw = min(self.crop[0], x.shape[1]), min(self.crop[1], x.shape[2])
            # A third of the crops are centred on an artifact pixel when there is one, so small
            # regions are seen often enough; more would teach the model that artifacts are common.
            ys, xs = np.nonzero(y.any(0))
            if len(ys) and rng.random() < CENTRED_CROP_SHARE:
                k = int(rng.integers(len(ys)))
                y0 = int(np.clip(ys[k] - ch // 2, 0, x.shape[1] - ch))
                x0 = int(np.clip(xs[k] - cw // 2, 0, x.shape[2] - cw))
            else:
                y0 = int(rng.integers(0, x.shape[1] - ch + 1))
                x0 = int(rng.integers(0, x.shape[2] - cw + 1))
            x, y = x[:, y0:y0 + ch, x0:x0 + cw], y[:, y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 255.0
        return x, torch.from_numpy(np.ascontiguousarray(y)).float()
