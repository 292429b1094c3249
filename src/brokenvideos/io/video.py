"""mp4 read/write through PyAV (H.264, yuv420p).

The encoder runs single-threaded at a constant quantizer, in a process of its own, so the same frames give
the same bytes whatever ran before in the calling process.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np

from brokenvideos.errors import InputError
from brokenvideos.io import encoder
from brokenvideos.io.atomic import atomic_path
from brokenvideos.io.colour import yuv420p_to_rgb

DEFAULT_QP = 18  # visually near-lossless: artifacts survive encoding


def write_video(path, frames: np.ndarray, fps: int, qp: int = DEFAULT_QP) -> None:
    """Encode a T×H×W×3 uint8 RGB array to mp4 atomically, in a clean encoder process.

    x264's rate control does floating-point maths, so state that other libraries leave in this
    process (torch's flush-denormal mode, its thread pools) changed the bytes of an identical
    input. A spawned process starts from the default floating-point environment every time.
    """
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be T×H×W×3 uint8, got {frames.shape} {frames.dtype}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 4:2:0 needs even sizes, got {w}x{h}")
    with atomic_path(path, suffix=".mp4") as tmp:
        encoder.encode(str(tmp), frames, int(fps), int(qp))


def probe_video(path) -> dict:
    """Decode the whole file; return fps, num_frames, width, height. Bad files raise InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "video file is missing")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "no video stream")
            stream = container.streams.video[0]
            n = 0
            for frame in container.decode(stream):
                n += 1
                w, h = frame.width, frame.height
            rate = stream.average_rate or stream.guessed_rate
    except InputError:
        raise
    except Exception as exc:  # av.error.* for non-videos, truncated files, bad codecs
        raise InputError(path, f"cannot decode video ({exc.__class__.__name__}: {exc})") from None
    if n == 0:
        raise InputError(path, "video has no decodable frames (truncated?)")
    return {"fps": float(rate) if rate else 0.0, "num_frames": n, "width": w, "height": h}


def read_video(path, max_frames: int | None = None) -> np.ndarray:
    """Decode to a T×H×W×3 uint8 RGB array (8-bit 4:2:0, the usual case, converted exactly)."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame_to_rgb(frame))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as exc:
        raise InputError(path, f"cannot decode video ({exc.__class__.__name__}: {exc})") from None
    if not frames:
        raise InputError(path, "video has no decodable frames")
    return np.stack(frames)


def frame_to_rgb(frame) -> np.ndarray:
    """A decoded frame as H×W×3 uint8 RGB; yuv420p with even sizes by exact integer maths, other
    formats (10-bit, 4:4:4, odd sizes from other tools) through PyAV's converter."""
    if frame.format.name in ("yuv420p", "yuvj420p") and frame.width % 2 == 0 and frame.height % 2 == 0:
        return yuv420p_to_rgb(frame.to_ndarray(), frame.height, frame.width)
    return frame.to_ndarray(format="rgb24")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
