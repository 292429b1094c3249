"""mp4 read/write through PyAV (H.264, yuv420p), and folders of frame images read like videos.

The encoder runs single-threaded at a constant quantizer, in a process of its own, so the same frames give
the same bytes whatever ran before in the calling process.

A video's ``path`` may also be a folder of frame images (``.jpg``/``.jpeg``/``.png``, frames in
name order), as DAVIS-style datasets ship them: ``probe_video``, ``read_video`` and ``sha256_file``
accept one. Such a folder has no frame rate of its own; the caller gives it (default 24).
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
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
FRAMES_FPS = 24.0  # a frames folder's rate when nobody says otherwise


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


def list_frames(folder) -> list[Path]:
    """The frame images of a frames folder, in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())


def _read_frame_image(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for corrupt files
        raise InputError(path, f"cannot decode frame image ({exc.__class__.__name__}: {exc})") from None


def _frames_folder(path) -> list[Path]:
    frames = list_frames(path)
    if not frames:
        raise InputError(path, f"frames folder has no {'/'.join(s[1:] for s in FRAME_SUFFIXES)} images")
    return frames


def _probe_frames(path: Path, fps) -> dict:
    size = None
    frames = _frames_folder(path)
    for f in frames:  # decode every image, as probe_video decodes every frame of a file
        h, w, _ = _read_frame_image(f).shape
        if size is None:
            size = (h, w)
        elif (h, w) != size:
            raise InputError(f, f"frame is {w}x{h}, earlier frames are {size[1]}x{size[0]}")
    return {"fps": float(fps or FRAMES_FPS), "num_frames": len(frames), "width": size[1], "height": size[0]}


def probe_video(path, fps: float | None = None) -> dict:
    """Decode the whole file; return fps, num_frames, width, height. Bad files raise InputError.
    A frames folder reports ``fps`` (default FRAMES_FPS)."""
    path = Path(path)
    if path.is_dir():
        return _probe_frames(path, fps)
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
    """Decode to a T×H×W×3 uint8 RGB array (8-bit 4:2:0, the usual case, converted exactly).
    A frames folder gives its images in name order."""
    path = Path(path)
    if path.is_dir():
        frames = _frames_folder(path)[:max_frames]
        first = _read_frame_image(frames[0])
        out = np.empty((len(frames), *first.shape), np.uint8)
        out[0] = first
        for t, f in enumerate(frames[1:], 1):
            img = _read_frame_image(f)
            if img.shape != first.shape:
                raise InputError(f, f"frame is {img.shape[1]}x{img.shape[0]}, earlier frames are "
                                    f"{first.shape[1]}x{first.shape[0]}")
            out[t] = img
        return out
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
    """The file's sha256; of a frames folder, the sha256 of its ``<sha256>  <name>`` lines (one per
    frame image, in frame order), so renaming, reordering or editing a frame changes it."""
    if Path(path).is_dir():
        lines = "".join(f"{sha256_file(f, chunk)}  {f.name}\n" for f in list_frames(path))
        return hashlib.sha256(lines.encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
