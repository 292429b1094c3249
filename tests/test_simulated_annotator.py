"""The simulated annotator clicks where the interactive-segmentation protocol says it should."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from brokenvideos.annotate.prompts_file import FramePrompt
from brokenvideos.annotate.simulated import (
    Click,
    first_click,
    interior_point,
    largest_frame,
    next_click,
    simulate_clicks,
    simulate_video_prompts,
    truncate,
)

H, W = 64, 96


def rectangle(r0, r1, c0, c1) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r1 + 1, c0:c1 + 1] = True
    return m


def disc(cx, cy, r) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def test_first_click_is_the_centre_of_a_rectangle():
    # rows 10..30, columns 20..60: farthest from the boundary along the middle row; the centre wins the tie
    assert first_click(rectangle(10, 30, 20, 60)) == Click(40, 20, True)


def test_first_click_is_the_centre_of_a_disc():
    assert first_click(disc(48, 30, 12)) == Click(48, 30, True)


def test_image_border_counts_as_boundary():
    # a rectangle in the top-left corner: rows 0..10, columns 0..20 -> centre (10, 5), not the corner
    assert interior_point(rectangle(0, 10, 0, 20)) == (10, 5)


def test_first_click_on_empty_mask_is_none():
    assert first_click(np.zeros((H, W), bool)) is None
    assert simulate_clicks(np.zeros((H, W), bool), 3) == []


def test_second_click_is_positive_in_the_missed_part():
    gt = rectangle(10, 30, 20, 60)
    pred = rectangle(10, 30, 20, 40)  # left half found, right half (columns 41..60) missed
    c = next_click(gt, pred)
    assert c.positive
    assert gt[c.y, c.x] and not pred[c.y, c.x]
    assert c.y == 20 and 41 <= c.x <= 60
    assert abs(c.x - 50.5) <= 0.5  # the middle of the missed block


def test_second_click_is_negative_in_a_spurious_region():
    gt = rectangle(10, 30, 20, 60)
    pred = gt | rectangle(40, 60, 10, 40)  # found everything, plus a large false positive below
    c = next_click(gt, pred)
    assert not c.positive
    assert pred[c.y, c.x] and not gt[c.y, c.x]
    assert (c.x, c.y) == (25, 50)


def test_the_largest_error_region_wins():
    gt = rectangle(10, 30, 20, 60)
    small_miss = gt & ~rectangle(10, 14, 20, 60)  # misses 5 rows x 41 columns = 205 px
    big_false = small_miss | rectangle(40, 62, 0, 30)  # plus 23 x 31 = 713 px spurious
    assert next_click(gt, small_miss).positive
    assert not next_click(gt, big_false).positive


def test_exact_prediction_needs_no_click_and_simulation_stops():
    gt = disc(48, 30, 12)
    assert next_click(gt, gt) is None
    calls = []

    def perfect(clicks):
        calls.append(list(clicks))
        return gt

    assert simulate_clicks(gt, 5, perfect) == [Click(48, 30, True)]
    assert len(calls) == 1


def test_clicks_follow_the_prediction():
    gt = rectangle(10, 30, 20, 60)
    preds = iter([rectangle(10, 30, 20, 40), gt | rectangle(40, 60, 10, 40), gt])
    clicks = simulate_clicks(gt, 5, lambda clicks: next(preds))
    assert [c.positive for c in clicks] == [True, True, False]
    assert clicks[0] == Click(40, 20, True)


def test_more_than_one_click_needs_a_predictor():
    with pytest.raises(ValueError):
        simulate_clicks(rectangle(10, 30, 20, 60), 2)


def test_video_prompts_use_the_frame_where_the_instance_is_largest():
    gt = np.zeros((4, H, W), np.uint8)
    gt[0][rectangle(10, 20, 10, 20)] = 1
    gt[2][rectangle(10, 30, 20, 60)] = 1  # largest on frame 2
    gt[1][disc(70, 40, 8)] = 3
    assert largest_frame(gt == 1) == 2
    seen = []

    def predict(instance_id, frame, clicks):
        seen.append((instance_id, frame, len(clicks)))
        return np.zeros((H, W), bool)  # always empty: every next click is positive

    vp = simulate_video_prompts(gt, {1: "visual_breakdown"}, 2, predict)
    assert sorted(vp.instances) == [1, 3]
    p1 = vp.instances[1]
    assert p1.subcategory == "visual_breakdown" and vp.instances[3].subcategory == "unknown"
    assert len(p1.prompts) == 1 and p1.initial.frame == 2
    assert p1.initial.points[0] == (40.0, 20.0) and p1.initial.labels == (1, 1)
    assert vp.instances[3].initial == FramePrompt(1, ((70.0, 40.0), vp.instances[3].initial.points[1]), (1, 1))
    assert seen == [(1, 2, 1), (3, 1, 1)]
    one = truncate(vp, 1)
    assert one.instances[1].initial.points == ((40.0, 20.0),) and one.instances[1].initial.labels == (1,)
