"""J and F equal vos-benchmark's (the DAVIS 2017 code) to 1e-9, on masks chosen to hit the edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.morphology import disk as skimage_disk
from vos_benchmark.evaluator import Evaluator
from vos_benchmark.utils import _seg2bmap

from brokenvideos.metrics import jf
from brokenvideos.metrics.jf import (
    BOUND_TH,
    VOID,
    bound_pix,
    boundary_f_measure,
    boundary_map,
    disk,
    evaluate_video,
    f_per_frame,
    j_per_frame,
    jf_per_frame,
    region_similarity,
)

TOL = 1e-9


def vos_jf(gt: np.ndarray, pred: np.ndarray) -> tuple[list[float], list[float]]:
    """vos-benchmark's per-frame J and F (fractions; it reports their means in percent) of binary masks.

    Its Evaluator starts an object's lists at the object's first frame, so callers give it frames
    where GT or prediction is non-empty from the first frame on.
    """
    evaluator = Evaluator(boundary=BOUND_TH)
    for g, p in zip(gt, pred):
        evaluator.feed_frame(p.astype(np.uint8), g.astype(np.uint8))
    assert len(evaluator.object_iou[1]) == len(gt)
    return evaluator.object_iou[1], evaluator.boundary_f[1]


def assert_matches_vos(gt: np.ndarray, pred: np.ndarray) -> None:
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    vos_j, vos_f = vos_jf(gt, pred)
    j, f = jf_per_frame(gt, pred)  # J from the blocks
    np.testing.assert_allclose(j, vos_j, rtol=0, atol=TOL)
    np.testing.assert_allclose(f, vos_f, rtol=0, atol=TOL)
    np.testing.assert_allclose(j_per_frame(gt, pred), vos_j, rtol=0, atol=TOL)  # J from whole frames
    np.testing.assert_array_equal(f_per_frame(gt, pred), f)
    for g, p, j, f in zip(gt, pred, vos_j, vos_f):
        assert region_similarity(g, p) == pytest.approx(j, abs=TOL)
        assert boundary_f_measure(g, p) == pytest.approx(f, abs=TOL)


def ellipse(shape, cy, cx, ry, rx) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def rectangles(shape, rng, count) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for _ in range(count):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, shape[0] // 3 + 2), rng.integers(1, shape[1] // 3 + 2)
        mask[y : y + h, x : x + w] = True
    return mask


def structured_pairs(shape, rng) -> tuple[np.ndarray, np.ndarray]:
    """GT/prediction frames: ellipses and their perturbations, rectangles, noise and a blob."""
    h, w = shape
    gt, pred = [], []
    for _ in range(3):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.05, 0.3) * h, rng.uniform(0.05, 0.3) * w
        gt.append(ellipse(shape, cy, cx, ry, rx))
        pred.append(ellipse(shape, cy + rng.normal(0, 0.02 * h), cx, ry * rng.uniform(0.8, 1.2), rx))
    gt.append(rectangles(shape, rng, 4))
    pred.append(rectangles(shape, rng, 4))
    gt.append(rng.random(shape) < 0.5)
    pred.append(rng.random(shape) < 0.3)
    blob = ellipse(shape, h / 2, w / 2, h / 4, w / 4)
    gt.append(blob)
    pred.append(blob ^ (rng.random(shape) < 0.01))
    return np.stack(gt), np.stack(pred)


@pytest.mark.parametrize("shape", [(48, 64), (97, 131), (416, 624)])
def test_random_and_structured_masks_match_vos(shape, min_split_area):
    rng = np.random.default_rng(sum(shape))
    gt, pred = structured_pairs(shape, rng)
    noise = [(rng.random(shape) < d, rng.random(shape) < d) for d in (0.002, 0.05, 0.9)]
    gt = np.concatenate([gt, [g for g, _ in noise]])
    pred = np.concatenate([pred, [p for _, p in noise]])
    assert_matches_vos(gt, pred)


def test_1152x1760_matches_vos():
    shape = (1152, 1760)
    rng = np.random.default_rng(7)
    gt = np.stack([ellipse(shape, 500, 800, 300, 420), rectangles(shape, rng, 5)])
    pred = np.stack([ellipse(shape, 510, 790, 290, 430), rectangles(shape, rng, 5)])
    assert_matches_vos(gt, pred)


def test_empty_masks_follow_davis():
    shape = (40, 50)
    empty, obj = np.zeros(shape, bool), ellipse(shape, 20, 25, 8, 10)
    # both empty: vos-benchmark evaluates no object at all; DAVIS's db_eval_iou and f_measure give 1
    assert region_similarity(empty, empty) == 1.0
    assert boundary_f_measure(empty, empty) == 1.0
    # exactly one empty: J = 0, F = 0, in vos-benchmark as in DAVIS
    assert_matches_vos(np.stack([empty, obj]), np.stack([obj, empty]))
    assert region_similarity(empty, obj) == 0.0 and boundary_f_measure(obj, empty) == 0.0


@pytest.mark.parametrize("shape", [(40, 50), (1, 7), (6, 1), (2, 2)])
def test_tiny_objects_and_corners_match_vos(shape):
    h, w = shape
    frames = []
    for y, x in [(0, 0), (h - 1, w - 1), (h - 1, 0), (0, w - 1), (h // 2, w // 2)]:
        for size in (1, 2):
            frame = np.zeros(shape, bool)
            frame[y : y + size, x : x + size] = True
            frames.append(frame)
    frames = np.stack(frames)
    # every GT frame against every prediction frame, including itself
    gt = np.repeat(frames, len(frames), axis=0)
    pred = np.tile(frames, (len(frames), 1, 1))
    assert_matches_vos(gt, pred)


def test_masks_touching_the_border_match_vos():
    shape = (60, 80)
    full = np.ones(shape, bool)
    left = np.zeros(shape, bool)
    left[:, :10] = True
    bottom = np.zeros(shape, bool)
    bottom[50:, :] = True
    corner = np.zeros(shape, bool)
    corner[40:, 60:] = True
    frames = [full, left, bottom, corner, ~left, ~corner]
    gt = np.stack([a for a in frames for _ in frames])
    pred = np.stack([b for _ in frames for b in frames])
    assert_matches_vos(gt, pred)


@pytest.fixture(params=[0, jf.MIN_SPLIT_AREA], ids=["every-split", "default-splits"])
def min_split_area(request, monkeypatch):
    """Run with frames cut at every gap the dilation allows, and with the speed heuristic."""
    monkeypatch.setattr(jf, "MIN_SPLIT_AREA", request.param)
    return request.param


def test_objects_around_the_dilation_reach_match_vos(min_split_area):
    """Two objects at every separation around the reach, where a frame's blocks split or merge."""
    shape = (120, 160)
    reach = bound_pix(shape)
    gt, pred = [], []
    for gap in range(0, 2 * reach + 6):
        for axis in (0, 1):
            g = np.zeros(shape, bool)
            g[30:50, 30:50] = True
            shifted = slice(50 + gap, 70 + gap)
            g[(shifted, slice(30, 50)) if axis == 0 else (slice(30, 50), shifted)] = True
            if min_split_area == 0:  # the cut happens exactly where the reach allows it
                assert len(jf._blocks(g, g, reach)) == (2 if gap >= reach + 2 else 1)
            for dy, dx in [(0, 0), (1, 2), (-2, 1), (reach, 0), (0, reach + 1)]:
                gt.append(g)
                pred.append(np.roll(g, (dy, dx), axis=(0, 1)) & (np.arange(shape[1]) % 7 != 3))
    assert_matches_vos(np.stack(gt), np.stack(pred))


def test_boundary_map_is_davis_seg2bmap():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 9), (9, 1), (33, 47)]:
        for density in (0.1, 0.5):
            mask = rng.random(shape) < density
            np.testing.assert_array_equal(boundary_map(mask), _seg2bmap(mask))
    stack = rng.random((3, 20, 30)) < 0.4
    np.testing.assert_array_equal(boundary_map(stack), [_seg2bmap(m) for m in stack])


def test_disk_and_radius_are_davis():
    for radius in [0, 1, 2, 7.0, 8, 18, 25, 1.5]:
        np.testing.assert_array_equal(disk(radius), skimage_disk(radius))
    for shape in [(480, 854), (1080, 1920), (416, 624), (1152, 1760), (1, 1)]:
        assert bound_pix(shape) == np.ceil(BOUND_TH * np.linalg.norm(shape))
    assert bound_pix((480, 854)) == 8 and bound_pix((1080, 1920)) == 18
    assert bound_pix((480, 854), bound_th=3) == 3  # >= 1 is already pixels


def test_bound_th_in_pixels_is_a_radius():
    """DAVIS reads bound_th >= 1 as pixels; vos-benchmark always scales by the diagonal, so it is
    given the fraction of the diagonal that rounds up to the same 4-pixel radius."""
    shape = (50, 70)
    gt, pred = ellipse(shape, 25, 35, 12, 20), ellipse(shape, 27, 31, 11, 22)
    evaluator = Evaluator(boundary=3.5 / np.linalg.norm(shape))
    evaluator.feed_frame(pred.astype(np.uint8), gt.astype(np.uint8))
    assert boundary_f_measure(gt, pred, bound_th=4) == pytest.approx(evaluator.boundary_f[1][0], abs=TOL)
    assert boundary_f_measure(gt, pred, bound_th=4) != boundary_f_measure(gt, pred)


def two_instance_video(frames=5, shape=(90, 120)) -> tuple[np.ndarray, np.ndarray]:
    """Instances 1 and 2 in every frame; the prediction swaps id 2 for id 3 half the time and shifts 1."""
    gt = np.zeros((frames, *shape), np.uint8)
    pred = np.zeros_like(gt)
    for t in range(frames):
        gt[t][ellipse(shape, 30, 30 + 3 * t, 15, 20)] = 1
        gt[t][ellipse(shape, 60, 90, 12, 12)] = 2
        pred[t][ellipse(shape, 32, 31 + 3 * t, 14, 21)] = 1
        pred[t][ellipse(shape, 61, 88, 12, 13)] = 2 if t % 2 else 3
    return gt, pred


def assert_davis_matches_vos(gt: np.ndarray, pred: np.ndarray) -> list[dict]:
    evaluator = Evaluator()
    for g, p in zip(gt, pred):
        evaluator.feed_frame(p, g)
    iou, boundary_f = evaluator.conclude()  # percent, GT objects only
    rows = evaluate_video(gt, pred, protocol="davis")
    assert [r["object"] for r in rows] == sorted(iou)
    for r in rows:
        assert r["J"] == pytest.approx(iou[r["object"]] / 100, abs=TOL)
        assert r["F"] == pytest.approx(boundary_f[r["object"]] / 100, abs=TOL)
        assert r["JF"] == pytest.approx((r["J"] + r["F"]) / 2, abs=TOL)
    return rows


def test_evaluate_video_davis_matches_vos_per_object(min_split_area):
    rows = assert_davis_matches_vos(*two_instance_video())
    assert [r["object"] for r in rows] == [1, 2]  # id 3 is only predicted: not an object


def test_overlapping_instances_match_vos_per_object(min_split_area):
    """Rectangles of ids 1-3 overlapping in GT and prediction, so objects share blocks."""
    rng = np.random.default_rng(11)
    shape = (90, 140)
    gt = np.zeros((6, *shape), np.uint8)
    pred = np.zeros_like(gt)
    for vol in (gt, pred):
        for t in range(len(vol)):
            for k in (1, 2, 3, 1, 2, 3):
                vol[t][rectangles(shape, rng, 1)] = k
    pred[2][rng.random(shape) < 0.02] = 2
    gt[0, 0, :3] = (1, 2, 3)  # vos-benchmark's per-object lists start where an id first appears
    assert_davis_matches_vos(gt, pred)


def test_evaluate_video_mevis_is_the_union():
    gt, pred = two_instance_video()
    (row,) = evaluate_video(gt, pred, protocol="mevis")
    vos_j, vos_f = vos_jf(gt > 0, pred > 0)
    assert row["object"] == 1
    assert row["J"] == pytest.approx(np.mean(vos_j), abs=TOL)
    assert row["F"] == pytest.approx(np.mean(vos_f), abs=TOL)
    j, f = jf_per_frame(gt, pred)  # non-zero = the union
    assert (row["J"], row["F"]) == pytest.approx((j.mean(), f.mean()), abs=TOL)


def test_every_frame_counts_and_skip_first_last():
    shape = (30, 40)
    gt = np.zeros((4, *shape), np.uint8)
    gt[:, 10:20, 10:20] = 1
    pred = gt.copy()
    pred[0] = 0  # a missed first frame
    pred[3, :, :] = 1  # a wrong last frame
    (row,) = evaluate_video(gt, pred)
    j_last = 100 / (30 * 40)
    assert row["J"] == pytest.approx((0 + 1 + 1 + j_last) / 4, abs=TOL)
    (row,) = evaluate_video(gt, pred, skip_first_last=True)
    assert (row["J"], row["F"], row["JF"]) == (1.0, 1.0, 1.0)
    # an empty GT frame with an empty prediction counts as perfect (both-empty rule)
    empty = np.zeros((2, *shape), np.uint8)
    assert evaluate_video(empty, empty) == [{"object": 1, "J": 1.0, "F": 1.0, "JF": 1.0}]
    assert evaluate_video(empty, empty, protocol="davis") == []


def test_bad_arguments_raise():
    vol = np.zeros((2, 10, 10), np.uint8)
    with pytest.raises(ValueError, match="protocol"):
        evaluate_video(vol, vol, protocol="coco")
    with pytest.raises(ValueError, match="shape"):
        evaluate_video(vol, vol[:, :5])
    with pytest.raises(ValueError, match="3 frames"):
        evaluate_video(vol, vol, skip_first_last=True)
    with pytest.raises(ValueError, match="uint8"):
        evaluate_video(vol.astype(np.int32), vol.astype(np.int32), protocol="davis")
    with pytest.raises(ValueError, match="H×W"):
        region_similarity(vol, vol)


def test_void_pixels_count_in_neither_j_nor_f():
    """DAVIS 2017 (db_eval_iou, db_eval_boundary with void_pixels V): J = |S∩G∖V| / |(S∪G)∖V| and F
    on the boundaries of S∖V and G∖V; 255 in the ground truth is V, never an object."""
    rng = np.random.default_rng(3)
    shape = (3, 48, 64)
    gt = np.zeros(shape, np.uint8)
    gt[:, 10:30, 10:40] = 1
    gt[:, 25:35, 30:50] = 255  # a void band overlapping the object and the background
    pred = np.zeros(shape, np.uint8)
    pred[:, 12:34, 8:52] = 1
    pred[1] |= (rng.random(shape[1:]) < 0.05).astype(np.uint8)
    void = gt == VOID
    s, g = (pred > 0) & ~void, (gt == 1) & ~void
    j_ref = (s & g).sum(axis=(1, 2)) / (s | g).sum(axis=(1, 2))
    _, f_ref = vos_jf(g, s)  # F of the void-masked masks is DAVIS's f_measure with void_pixels
    for protocol in ("mevis", "davis"):
        (obj,) = evaluate_video(gt, pred, protocol)
        assert obj["object"] == 1  # 255 is not an instance under davis
        assert obj["J"] == pytest.approx(j_ref.mean(), abs=TOL)
        assert obj["F"] == pytest.approx(np.mean(f_ref), abs=TOL)
    # a prediction confined to the void scores as predicting nothing
    only_void = np.where(void, 1, 0).astype(np.uint8)
    assert evaluate_video(gt, only_void, "mevis") == evaluate_video(gt, np.zeros_like(gt), "mevis")
