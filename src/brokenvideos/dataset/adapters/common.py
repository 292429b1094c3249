"""Pieces several layouts share: finding videos, and mask loaders for per-frame PNGs and COCO RLE."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from brokenvideos.errors import InputError
from brokenvideos.io.masks import read_instances, read_mask
from brokenvideos.io.video import FRAME_SUFFIXES

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def video_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def is_frames_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir())


def videos_in(folder: Path) -> list[Path]:
    """The videos directly in ``folder``: video files and frames folders, by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or is_frames_folder(p))


def unknown_instances(vol: np.ndarray) -> dict[int, str]:
    return {k: "unknown" for k in sorted(set(np.unique(vol).tolist()) - {0})}


def png_masks(directory: Path, stems: list[str] | None = None):
    """Loader for a folder of per-frame index PNGs, frames in name order (or one per ``stems``,
    the video's frame names); ``instances.json`` beside them names the ids, else ``unknown``."""
    directory = Path(directory)

    def load(num_frames: int, size: tuple[int, int]):
        if stems is None:
            files = sorted(directory.glob("*.png"))
            if len(files) != num_frames:
                raise InputError(directory, f"{len(files)} mask PNGs for a video of {num_frames} frames")
        else:
            files = [directory / f"{s}.png" for s in stems]
            missing = [f for f in files if not f.exists()]
            if missing:
                raise InputError(missing[0], f"mask frame is missing ({len(missing)} of {len(files)} missing)")
        vol = np.empty((num_frames, *size), np.uint8)
        for t, f in enumerate(files):
            m = read_mask(f)
            if m.shape != tuple(size):
                raise InputError(f, f"mask is {m.shape[1]}x{m.shape[0]}, video is {size[1]}x{size[0]}")
            vol[t] = m
        return vol, read_instances(directory) or unknown_instances(vol)
    return load


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read JSON ({exc.__class__.__name__}: {exc})") from None


def decode_rle(rle, size: tuple[int, int], where: Path) -> np.ndarray:
    """One COCO RLE (``{"size": [h, w], "counts": str|list}``) as an H×W bool mask; None is empty."""
    if rle is None:
        return np.zeros(size, bool)
    from pycocotools import mask as coco

    try:
        if list(rle["size"]) != list(size):
            raise InputError(where, f"RLE mask is {rle['size'][1]}x{rle['size'][0]}, video is {size[1]}x{size[0]}")
        if isinstance(rle["counts"], list):  # uncompressed RLE: compress first
            rle = coco.frPyObjects(rle, *size)
        elif isinstance(rle["counts"], str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode()}
        with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            return coco.decode(rle).astype(bool)
    except InputError:
        raise
    except Exception as exc:  # malformed counts, missing keys
        raise InputError(where, f"cannot decode RLE mask ({exc.__class__.__name__}: {exc})") from None
