"""The H.264 encoder, run in a process of its own so that its output depends only on its input.

State that other libraries leave in a process (torch's flush-denormal mode, its thread pools) was
seen to change x264's bytes for an identical input. A child started with ``python -m brokenvideos.io.encoder`` has the default
floating-point environment and runs nothing else; it is started once per process and kept.

Protocol on the child's stdin/stdout: one JSON header line, then the raw frame bytes; the child
answers one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

_LOCK = threading.Lock()
_CHILD: subprocess.Popen | None = None
_SINGLE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def encode_mp4(path: str, frames: np.ndarray, fps: int, qp: int) -> None:
    """The encode itself: libx264 single-threaded at a constant quantizer, no version or time tags.

    Constant QP, not CRF: with CRF (mbtree, adaptive quantisation) x264 gave different bytes for
    the same frames in about one encode in ten, even in a fresh process; with rate control off its
    decisions are integer and repeat exactly.
    """
    import av

    from brokenvideos.io.colour import rgb_to_yuv420p

    with av.open(path, mode="w", format="mp4") as container:
        container.metadata.clear() if hasattr(container.metadata, "clear") else None
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"qp": str(qp), "preset": "medium", "x264-params": "threads=1:sliced-threads=0"}
        for i, rgb in enumerate(frames):
            # Converted here, exactly (swscale varies by CPU), with explicit timestamps: x264's rate
            # control reads frame durations, and frames without a pts made its output vary.
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _child() -> subprocess.Popen:
    global _CHILD
    if _CHILD is None or _CHILD.poll() is not None:
        src = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, **_SINGLE_THREAD,
               "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        _CHILD = subprocess.Popen([sys.executable, "-m", "brokenvideos.io.encoder"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, env=env)
    return _CHILD


def encode(path: str, frames: np.ndarray, fps: int, qp: int) -> None:
    """Encode ``frames`` (T×H×W×3 uint8, C-contiguous) to ``path`` in the encoder process."""
    header = {"path": path, "shape": list(frames.shape), "fps": fps, "qp": qp}
    with _LOCK:
        child = _child()
        try:
            child.stdin.write((json.dumps(header) + "\n").encode())
            child.stdin.write(memoryview(np.ascontiguousarray(frames)).cast("B"))
            child.stdin.flush()
            line = child.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            child.kill()
            raise RuntimeError(f"{path}: the encoder process died (exit code {child.wait()})")
    reply = json.loads(line)
    if "error" in reply:
        raise RuntimeError(f"{path}: {reply['error']}")


def _serve() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while line := stdin.readline():
        header = json.loads(line)
        shape = tuple(header["shape"])
        data = stdin.read(int(np.prod(shape)))
        try:
            encode_mp4(header["path"], np.frombuffer(data, np.uint8).reshape(shape), header["fps"], header["qp"])
            reply = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which raises it
            reply = {"error": f"{exc.__class__.__name__}: {exc}"}
        stdout.write((json.dumps(reply) + "\n").encode())
        stdout.flush()


if __name__ == "__main__":
    _serve()
