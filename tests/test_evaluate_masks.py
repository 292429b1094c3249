"""``brokenvideos evaluate-masks`` on masks written to disk, against hand-computed J and F."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brokenvideos.cli import main
from brokenvideos.errors import InputError
from brokenvideos.io.masks import write_mask, write_video_masks
from brokenvideos.metrics.evaluate_masks import evaluate_dirs

SHAPE = (40, 60)  # diagonal 72 px: the boundary tolerance is 1 px
FRAMES = 3


def video(*boxes) -> np.ndarray:
    """FRAMES identical frames with instance k filling boxes[k - 1] = (y0, y1, x0, x1)."""
    vol = np.zeros((FRAMES, *SHAPE), np.uint8)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        vol[:, y0:y1, x0:x1] = k
    return vol


SQUARE = (5, 9, 5, 9)  # 4x4: 16 px, 16 boundary px (a rectangle has 2(h + w))
BAR = (20, 22, 30, 36)  # 2x6: 12 px, 16 boundary px, far from SQUARE
BIG = (10, 20, 10, 30)


@pytest.fixture
def dirs(tmp_path):
    """Video a: GT instances SQUARE and BAR, the prediction finds SQUARE only.
    Video b: one instance, predicted exactly."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_video_masks(gt / "a", video(SQUARE, BAR), {1: "blur", 2: "warp"})
    write_video_masks(pred / "a", video(SQUARE), {})
    write_video_masks(gt / "b", video(BIG), {1: "blur"})
    write_video_masks(pred / "b", video(BIG), {})
    return gt, pred, tmp_path / "out" / "scores.csv"


def run_cli(capsys, gt, pred, out, *extra) -> tuple[int, str, str]:
    code = main(["evaluate-masks", "--gt", str(gt), "--pred", str(pred), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def global_line(stdout: str) -> dict[str, float]:
    last = stdout.strip().splitlines()[-1]
    return {key: float(value) for key, value in (item.split("=") for item in last.split())}


def test_mevis_scores_the_union_per_video(dirs, capsys):
    gt, pred, out = dirs
    code, stdout, _ = run_cli(capsys, gt, pred, out)  # mevis is the default
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["video", "object", "J", "F", "JF"]
    assert list(zip(table.video, table.object)) == [("a", 1), ("b", 1)]
    # a: J = 16 / (16 + 12); all 16 predicted boundary px match (precision 1), 16 of the GT's 32
    # do (recall 1/2), so F = 2/3
    expected = {"J": [16 / 28, 1.0], "F": [2 / 3, 1.0], "JF": [(16 / 28 + 2 / 3) / 2, 1.0]}
    for column, values in expected.items():
        np.testing.assert_allclose(table[column], values, rtol=0, atol=1e-12)
    # global = mean over videos
    assert global_line(stdout) == pytest.approx(
        {"J": (16 / 28 + 1) / 2, "F": (2 / 3 + 1) / 2, "J&F": ((16 / 28 + 2 / 3) / 2 + 1) / 2}, abs=1e-6
    )


def test_davis_scores_each_gt_instance(dirs, capsys):
    gt, pred, out = dirs
    code, stdout, _ = run_cli(capsys, gt, pred, out, "--protocol", "davis")
    assert code == 0
    table = pd.read_csv(out)
    assert list(zip(table.video, table.object)) == [("a", 1), ("a", 2), ("b", 1)]
    for column in ("J", "F", "JF"):
        np.testing.assert_allclose(table[column], [1.0, 0.0, 1.0], rtol=0, atol=1e-12)
    # global = mean over objects, not over videos (which would give 0.75)
    assert global_line(stdout) == pytest.approx({"J": 2 / 3, "F": 2 / 3, "J&F": 2 / 3}, abs=1e-6)
    assert not list(out.parent.glob(".tmp-*"))  # written atomically


def test_skip_first_last(tmp_path, capsys):
    gt, pred, out = tmp_path / "gt", tmp_path / "pred", tmp_path / "out.csv"
    truth = video(BIG)
    guess = truth.copy()
    guess[0], guess[-1] = 0, 1  # wrong first and last frames
    write_video_masks(gt / "v", truth, {})
    write_video_masks(pred / "v", guess, {})
    _, stdout, _ = run_cli(capsys, gt, pred, out)
    assert global_line(stdout)["J"] == pytest.approx((0 + 1 + 200 / (40 * 60)) / 3, abs=1e-6)
    _, stdout, _ = run_cli(capsys, gt, pred, out, "--skip-first-last")
    assert global_line(stdout) == {"J": 1.0, "F": 1.0, "J&F": 1.0}


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_prediction_frame_names_video_and_frame(dirs, capsys, workers):
    gt, pred, out = dirs
    (pred / "b" / "00001.png").unlink()
    code, _, stderr = run_cli(capsys, gt, pred, out, "--workers", str(workers))
    assert code == 2
    assert f"error: {pred / 'b' / '00001.png'}: prediction frame is missing" in stderr
    assert not out.exists()


def test_wrong_size_names_video_and_frame(dirs, capsys):
    gt, pred, out = dirs
    write_mask(pred / "a" / "00002.png", np.zeros((20, 30), np.uint8))
    code, _, stderr = run_cli(capsys, gt, pred, out)
    assert code == 2
    assert f"error: {pred / 'a' / '00002.png'}: prediction is 30x20, ground truth is 60x40" in stderr


def test_missing_prediction_video(dirs, capsys):
    gt, pred, out = dirs
    for frame in (pred / "b").iterdir():
        frame.unlink()
    (pred / "b").rmdir()
    code, _, stderr = run_cli(capsys, gt, pred, out)
    assert code == 2
    assert f"error: {pred / 'b'}: prediction video is missing" in stderr


def test_evaluate_dirs_order_and_workers(dirs):
    gt, pred, _ = dirs
    serial = evaluate_dirs(gt, pred, video_ids=["b", "a"], protocol="davis")
    assert list(serial.video) == ["b", "a", "a"]
    parallel = evaluate_dirs(gt, pred, video_ids=["b", "a"], protocol="davis", workers=2)
    pd.testing.assert_frame_equal(serial, parallel)
    (pred / "c").mkdir()  # a prediction for a video the GT lacks
    with pytest.raises(InputError, match="no mask PNGs"):
        evaluate_dirs(gt, pred, video_ids=["c"])
