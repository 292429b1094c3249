"""A folder of frame images is a video to io/video.py: probed, read and hashed like an mp4."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from brokenvideos.errors import InputError
from brokenvideos.io.video import probe_video, read_video, sha256_file

T, H, W = 5, 12, 16


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    for t, f in enumerate(data):  # png: lossless, so reading back is exact
        Image.fromarray(f).save(folder / f"frame_{t:03d}.png")
    (folder / "notes.txt").write_text("not a frame")
    return folder, data


def test_probe_and_read(frames):
    folder, data = frames
    assert probe_video(folder) == {"fps": 24.0, "num_frames": T, "width": W, "height": H}
    assert probe_video(folder, fps=10)["fps"] == 10.0
    np.testing.assert_array_equal(read_video(folder), data)
    np.testing.assert_array_equal(read_video(folder, max_frames=2), data[:2])


def test_hash_follows_frames_not_other_files(frames):
    folder, _ = frames
    before = sha256_file(folder)
    assert len(before) == 64
    (folder / "notes.txt").write_text("edited")
    assert sha256_file(folder) == before
    (folder / "frame_004.png").rename(folder / "frame_005.png")
    assert sha256_file(folder) != before


def test_bad_frames_name_the_file(frames, tmp_path):
    folder, _ = frames
    Image.fromarray(np.zeros((H, W + 2, 3), np.uint8)).save(folder / "frame_002.png")
    with pytest.raises(InputError, match=f"frame is {W + 2}x{H}, earlier frames are {W}x{H}") as exc:
        probe_video(folder)
    assert exc.value.path == str(folder / "frame_002.png")
    (folder / "frame_002.png").unlink()
    (folder / "frame_003.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot decode frame image") as exc:
        read_video(folder)
    assert exc.value.path == str(folder / "frame_003.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="frames folder has no jpg/jpeg/png images"):
        probe_video(tmp_path / "empty")


def test_overlay_of_a_frames_folder(frames, tmp_path):
    from brokenvideos.annotate.export import write_overlay

    folder, data = frames
    masks = np.zeros((T, H, W), np.uint8)
    masks[:, 2:8, 3:9] = 1
    write_overlay(folder, masks, {1: "visual_breakdown"}, tmp_path / "a.mp4")  # no rate: FRAMES_FPS
    write_overlay(folder, masks, {1: "visual_breakdown"}, tmp_path / "b.mp4", fps=10)  # the manifest's
    assert probe_video(tmp_path / "a.mp4")["fps"] == 24.0
    info = probe_video(tmp_path / "b.mp4")
    assert (info["fps"], info["num_frames"], info["width"], info["height"]) == (10.0, T, W, H)
