"""`brokenvideos degrade`: He et al. V-D's lossy operations, checked on the files they write.

ABR: the measured bit rate within ±15 % of its target; CRF: an HEVC stream whose own SEI carries
the CRF; bit errors: exactly ⌊payload bytes / interval⌋ differing bits, all inside the packets'
NAL payloads, the file size unchanged and the file still opening.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from brokenvideos.degrade.ops import LEVELS, payload_ranges, stream_stats
from brokenvideos.io.video import write_video
from conftest import run_cli


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """16 frames of a moving textured scene at the default's size and quantizer."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    smooth = (texture.astype(np.int32) + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) // 3
    frames = np.stack([smooth[:, 2 * t:2 * t + 128] for t in range(16)]).astype(np.uint8)
    path = tmp_path_factory.mktemp("degrade") / "clip.mp4"
    write_video(path, frames, fps=8, qp=18)
    return path


def degrade(tmp_path, clip, op, level, *extra):
    out = tmp_path / f"{op}-{level}.mp4"
    res = run_cli(["degrade", "--in", clip, "--out", out, "--op", op, "--level", level, *extra])
    assert res.code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON record per call
    return out, json.loads(lines[0])


def popcount_diff(a: bytes, b: bytes) -> tuple[int, np.ndarray]:
    x = np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)
    return int(np.unpackbits(x).sum()), np.flatnonzero(x)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_abr_hits_its_bit_rate_within_15_percent(tmp_path, clip, level):
    out, rec = degrade(tmp_path, clip, "abr", level)
    source = stream_stats(clip)["kbps"]
    target = source * LEVELS["abr"][level - 1]
    measured = stream_stats(out)
    assert rec["target_kbps"] == pytest.approx(target)
    assert measured["codec"] == rec["codec"] == "hevc"
    assert abs(measured["kbps"] / target - 1) <= 0.15, (measured["kbps"], target)
    assert rec["kbps"] == pytest.approx(measured["kbps"]) and rec["frames_decoded"] == 16


def test_crf_is_hevc_with_the_crf_in_its_encoder_settings(tmp_path, clip):
    rates = []
    for level, crf in enumerate(LEVELS["crf"], start=1):
        out, rec = degrade(tmp_path, clip, "crf", level)
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.name == "hevc"
        # x265 writes its options into a user-data SEI of the stream itself
        assert f"crf={crf:.1f}".encode() in out.read_bytes()
        assert rec["setting"] == f"CRF {crf}" and rec["frames_decoded"] == 16
        rates.append(rec["kbps"])
    assert rates[0] > rates[1] > rates[2]  # a higher CRF spends fewer bits


def test_reencoding_gives_the_same_bytes_twice(tmp_path, clip):
    a, _ = degrade(tmp_path, clip, "crf", 2)
    b = tmp_path / "again.mp4"
    assert run_cli(["degrade", "--in", clip, "--out", b, "--op", "crf", "--level", "2"]).code == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("interval", [400, 2000])
def test_bit_errors_flip_floor_payload_over_interval_bits_inside_nal_payloads(tmp_path, clip, interval):
    out, rec = degrade(tmp_path, clip, "bit-error", 1, "--interval", interval)
    src, dst = clip.read_bytes(), out.read_bytes()
    assert len(dst) == len(src)
    ranges = payload_ranges(clip)
    payload = sum(b - a for a, b in ranges)
    packets = stream_stats(clip)["packets"]
    # payload = packet bytes minus each NAL unit's 4-byte length and 1-byte H.264 header
    assert 0 < payload < sum(size for _, size in packets)
    bits, where = popcount_diff(src, dst)
    assert bits == rec["flipped_bits"] == payload // interval > 0
    assert rec["payload_bytes"] == payload
    assert len(where) == bits  # one bit per touched byte
    inside = np.zeros(len(src), bool)
    for a, b in ranges:
        inside[a:b] = True
    assert inside[where].all()  # never the mp4 boxes, NAL lengths or NAL headers
    with av.open(str(out)) as c:  # still opens; decoding problems are counted, not hidden
        assert c.streams.video[0].codec_context.name == "h264"
    assert rec["frames_decoded"] + rec["packets_failed"] >= 1
    assert rec["frames_decoded"] <= 16


def test_bit_errors_at_the_papers_intervals_flip_nothing_in_a_small_clip(tmp_path, clip):
    # ⌊~100 kB / 3·10^5⌋ = 0: the paper's rates are for multi-megabyte videos
    out, rec = degrade(tmp_path, clip, "bit-error", 3)
    assert rec["payload_bytes"] < LEVELS["bit-error"][2]
    assert rec["flipped_bits"] == 0 and out.read_bytes() == clip.read_bytes()


def test_bit_errors_are_reproducible_from_the_seed(tmp_path, clip):
    a, _ = degrade(tmp_path, clip, "bit-error", 1, "--interval", 500)
    b = tmp_path / "seed1.mp4"
    c = tmp_path / "seed0.mp4"
    assert run_cli(["degrade", "--in", clip, "--out", b, "--op", "bit-error", "--level", "1",
                    "--interval", 500, "--seed", 1]).code == 0
    assert run_cli(["degrade", "--in", clip, "--out", c, "--op", "bit-error", "--level", "1",
                    "--interval", 500]).code == 0
    assert a.read_bytes() == c.read_bytes() != b.read_bytes()


def test_bad_input_gives_one_line_naming_the_file_and_writes_nothing(tmp_path):
    missing = tmp_path / "nope.mp4"
    res = run_cli(["degrade", "--in", missing, "--out", tmp_path / "o.mp4", "--op", "crf", "--level", "1"])
    assert res.code == 2 and str(missing) in res.error and "missing" in res.error
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    res = run_cli(["degrade", "--in", junk, "--out", tmp_path / "o.mp4", "--op", "bit-error", "--level", "1"])
    assert res.code == 2 and str(junk) in res.error
    assert not (tmp_path / "o.mp4").exists()
    assert not list(tmp_path.glob(".tmp-*"))
