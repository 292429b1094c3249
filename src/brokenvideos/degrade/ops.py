"""He et al. (2024) V-D lossy operations on one mp4: H.265 ABR, H.265 CRF, bit errors.

- ``abr``: libx265 two-pass average bit rate at {50, 25, 12.5} % of the source's bit rate. One pass
  overshoots 1.7-2.3x on a 16-frame clip (its first I-frame has no budget history); two passes
  come within about 8 %.
- ``crf``: libx265 constant rate factor {27, 33, 39}. x265 writes its settings (``crf=27.0`` among
  them) into the stream's SEI, so the file itself says how it was made.
- ``bit-error``: one flipped bit in every {10, 5, 3} x 10^5 bytes of the compressed stream. Bits
  flip in place inside the NAL units' payloads (not in the mp4 boxes, the NAL length prefixes or
  the NAL headers), so the file keeps its size and still opens; its frames are then decoded with
  FFmpeg's error concealment and the ones that fail are counted.

The bit rate of a file is its video packets' bytes x 8 over its duration (frames / fps).
Re-encodes take the decoded 4:2:0 planes as they are (no RGB round trip) and run x265 on one
thread, so the same input gives the same bytes.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from brokenvideos.config import derive_seed
from brokenvideos.errors import BrokenVideosError, InputError

LEVELS = {
    "abr": (0.5, 0.25, 0.125),         # fraction of the source bit rate
    "crf": (27, 33, 39),               # x265 CRF
    "bit-error": (1_000_000, 500_000, 300_000),   # bytes per flipped bit
}
OPERATIONS = tuple(LEVELS)
_X265_COMMON = "pools=none:frame-threads=1:log-level=error"
_NAL_HEADER = {"h264": 1, "hevc": 2}  # bytes of NAL header after the length prefix


def level_setting(op: str, level: int):
    if op not in LEVELS:
        raise BrokenVideosError(f"degrade: unknown operation {op!r}; known: {list(OPERATIONS)}")
    if level not in (1, 2, 3):
        raise BrokenVideosError(f"degrade: level must be 1, 2 or 3, got {level!r}")
    return LEVELS[op][level - 1]


def _open(path):
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(path, "video file is missing")
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise InputError(path, f"cannot open video ({exc.__class__.__name__}: {exc})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream")
    return container


def stream_stats(path) -> dict:
    """Codec, frame count, fps, video packet bytes, bit rate (kbit/s) and each packet's (pos, size)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        packets = [(int(p.pos), int(p.size)) for p in container.demux(stream) if p.size]
        codec = stream.codec_context.name
    if not packets or fps <= 0:
        raise InputError(path, "video has no packets or no frame rate")
    total = sum(s for _, s in packets)
    return {"codec": codec, "frames": len(packets), "fps": fps, "bytes": total,
            "kbps": total * 8 / (len(packets) / fps) / 1000, "packets": packets}


def _decoded_planes(path) -> tuple[list[np.ndarray], float, int, int]:
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate)
            planes = []
            for frame in container.decode(stream):
                if frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                planes.append(frame.to_ndarray())
                w, h = frame.width, frame.height
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"cannot decode video ({exc.__class__.__name__}: {exc})") from None
    if not planes:
        raise InputError(path, "video has no decodable frames")
    return planes, fps, w, h


def _x265(planes, fps: float, width: int, height: int, out, params: str) -> None:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(out), mode="w", format="mp4") as container:
        stream = container.add_stream("libx265", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "medium", "x265-params": f"{params}:{_X265_COMMON}"}
        for i, yuv in enumerate(planes):
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def encode_abr(src, out, fraction: float) -> dict:
    source = stream_stats(src)
    target = source["kbps"] * fraction
    planes, fps, w, h = _decoded_planes(src)
    with tempfile.TemporaryDirectory(prefix="bv-x265-") as tmp:
        params = f"bitrate={target:.3f}:stats={Path(tmp) / 'x265.stats'}"
        _x265(planes, fps, w, h, Path(tmp) / "pass1.mp4", params + ":pass=1")
        _x265(planes, fps, w, h, out, params + ":pass=2")
    return {"source_kbps": source["kbps"], "target_kbps": target, "setting": f"{100 * fraction:g}% bit rate"}


def encode_crf(src, out, crf: int) -> dict:
    source = stream_stats(src)
    planes, fps, w, h = _decoded_planes(src)
    _x265(planes, fps, w, h, out, f"crf={crf}")
    return {"source_kbps": source["kbps"], "setting": f"CRF {crf}"}


def payload_ranges(path, stats: dict | None = None) -> list[tuple[int, int]]:
    """File byte ranges [start, end) of the NAL unit payloads (after length prefix and NAL header)
    of every video packet: the bytes a transmission error may hit without breaking the container."""
    stats = stats or stream_stats(path)
    header = _NAL_HEADER.get(stats["codec"])
    if header is None:
        raise InputError(path, f"bit errors need H.264 or HEVC in mp4, found {stats['codec']!r}")
    data = Path(path).read_bytes()
    ranges = []
    for pos, size in stats["packets"]:
        i, end = pos, pos + size
        while i + 4 <= end:  # mp4 stores length-prefixed NAL units (4-byte lengths)
            n = int.from_bytes(data[i:i + 4], "big")
            if n <= 0 or i + 4 + n > end:
                raise InputError(path, f"packet at byte {pos} is not length-prefixed NAL units")
            if n > header:
                ranges.append((i + 4 + header, i + 4 + n))
            i += 4 + n
    return ranges


def flip_bits(src, out, interval: int, seed: int) -> dict:
    """One flipped bit in each full block of ``interval`` payload bytes, at a position drawn from
    (seed, block); returns the count, which is floor(payload bytes / interval)."""
    stats = stream_stats(src)
    ranges = payload_ranges(src, stats)
    starts = np.array([a for a, _ in ranges], np.int64)
    before = np.cumsum([0] + [b - a for a, b in ranges])  # payload bytes before each range
    payload = int(before[-1])
    data = bytearray(Path(src).read_bytes())
    flips = payload // interval
    for block in range(flips):
        rng = np.random.default_rng([seed, block])
        k = block * interval + int(rng.integers(interval))  # the k-th payload byte
        r = int(np.searchsorted(before, k, side="right")) - 1
        data[int(starts[r] + k - before[r])] ^= 1 << int(rng.integers(8))
    Path(out).write_bytes(bytes(data))
    return {"source_kbps": stats["kbps"], "setting": f"1 bit per {interval} bytes", "payload_bytes": payload,
            "flipped_bits": flips}


def decode_report(path) -> dict:
    """Decode every packet with FFmpeg's error concealment; count the frames that come out and the
    packets whose decoding failed (reported, never dropped silently)."""
    import av

    decoded, failed = 0, 0
    with _open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded += len(stream.codec_context.decode(packet))
            except av.error.FFmpegError:
                failed += 1
    return {"frames_decoded": decoded, "packets_failed": failed}


def degrade(src, out, op: str, level: int, seed: int = 0, interval: int | None = None) -> dict:
    """Write the degraded copy of ``src`` to ``out`` (atomically); return its one-line record."""
    from brokenvideos.io.atomic import atomic_path

    setting = level_setting(op, level)
    src, out = Path(src), Path(out)
    with atomic_path(out, suffix=".mp4") as tmp:
        if op == "abr":
            record = encode_abr(src, tmp, setting)
        elif op == "crf":
            record = encode_crf(src, tmp, setting)
        else:
            record = flip_bits(src, tmp, interval or setting, derive_seed(seed, "bit-error", level) % (2**32))
        result = stream_stats(tmp)
        record = {"in": str(src), "out": str(out), "op": op, "level": level, **record,
                  "codec": result["codec"], "kbps": result["kbps"], "frames": result["frames"],
                  "flipped_bits": record.get("flipped_bits", 0), **decode_report(tmp)}
    return record
