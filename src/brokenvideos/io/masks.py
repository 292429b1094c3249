"""DAVIS-style index masks: one palette PNG per frame, 0 = background, k = instance k.

Layout (docs/ARCHITECTURE.md): ``<root>/<video_id>/<frame:05d>.png`` plus ``instances.json``
mapping instance id -> taxonomy subcategory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_dir, write_bytes, write_json


def davis_palette() -> list[int]:
    """The PASCAL VOC / DAVIS colour map (bit-interleaved), 256 RGB triples flattened."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


PALETTE = davis_palette()


def frame_name(index: int) -> str:
    return f"{index:05d}.png"


def encode_mask(mask: np.ndarray) -> bytes:
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if mask.max(initial=0) > 255:
        raise ValueError("mask ids must fit in a byte (DAVIS palette PNG)")
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_mask(path, mask: np.ndarray) -> None:
    write_bytes(path, encode_mask(mask))


def read_mask(path) -> np.ndarray:
    """Read an index mask (palette or greyscale PNG) as a uint8 H×W array of ids."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "1"):
                raise InputError(path, f"mask must be a palette or greyscale PNG, got mode {img.mode}")
            return np.array(img, dtype=np.uint8)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, "mask file is missing") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise InputError(path, f"cannot read mask ({exc.__class__.__name__}: {exc})") from None


def write_video_masks(directory, masks: np.ndarray, instances: dict[int, str],
                      sidecars: dict[str, object] | None = None) -> None:
    """Write a T×H×W id volume, its instances.json and any JSON ``sidecars`` as one atomic swap."""
    with atomic_dir(directory) as tmp:
        for t, mask in enumerate(masks):
            (tmp / frame_name(t)).write_bytes(encode_mask(mask))
        write_json(tmp / "instances.json", {str(k): v for k, v in sorted(instances.items())})
        for name, obj in (sidecars or {}).items():
            write_json(tmp / name, obj)


def list_mask_frames(directory) -> list[Path]:
    return sorted(Path(directory).glob("*.png"))


def read_video_masks(directory, num_frames: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read every frame of a video's masks; check count and (H, W) when given."""
    directory = Path(directory)
    frames = list_mask_frames(directory)
    if not frames:
        raise InputError(directory, "no mask PNGs found")
    if num_frames is not None and len(frames) != num_frames:
        raise InputError(directory, f"{len(frames)} mask frames for a video of {num_frames} frames")
    expected = [frame_name(i) for i in range(len(frames))]
    if [f.name for f in frames] != expected:
        raise InputError(directory, "mask frames must be named 00000.png, 00001.png, … without gaps")
    vol = [read_mask(f) for f in frames]
    for f, m in zip(frames, vol):
        if size is not None and m.shape != tuple(size):
            raise InputError(f, f"mask is {m.shape[1]}x{m.shape[0]}, video is {size[1]}x{size[0]}")
        if m.shape != vol[0].shape:
            raise InputError(f, "mask frames differ in size")
    return np.stack(vol)


def read_instances(directory) -> dict[int, str]:
    path = Path(directory) / "instances.json"
    if not path.exists():
        return {}
    try:
        return {int(k): v for k, v in json.loads(path.read_text()).items()}
    except (ValueError, json.JSONDecodeError) as exc:
        raise InputError(path, f"bad instances.json ({exc})") from None
