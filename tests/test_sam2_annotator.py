"""The sam2 annotator through SAM2's real code path (random-weight tiny model on CPU), its prompt
file, its configuration errors, and the exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("sam2")

from brokenvideos.annotate import build_annotator  # noqa: E402
from brokenvideos.annotate.export import decode_coco_rle, encode_coco_rle, write_coco_rle, write_overlay  # noqa: E402
from brokenvideos.annotate.prompts_file import (  # noqa: E402
    FramePrompt,
    InstancePrompts,
    VideoPrompts,
    check_against_video,
    load_prompts,
    write_prompts,
)
from brokenvideos.annotate.quality import evaluate, plot, summary  # noqa: E402
from brokenvideos.annotate.sam2_annotator import Sam2Annotator, merge_logits  # noqa: E402
from brokenvideos.errors import BrokenVideosError, InputError  # noqa: E402
from brokenvideos.io.masks import read_instances, read_video_masks, write_video_masks  # noqa: E402
from brokenvideos.io.video import probe_video, read_video, write_video  # noqa: E402

T, H, W = 4, 64, 96
IMAGE_SIZE = 128  # the smallest size SAM2's tiny config handles comfortably (multiple of 32)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a shared 2-core machine, torch's thread pool spinning against other processes makes these
    tiny forward passes 10x slower; one thread is both faster and steadier here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sam2_cfg(**sam2) -> dict:
    base = {"checkpoint": None, "allow_random_weights": True, "image_size": IMAGE_SIZE, "device": "cpu"}
    return {"method": "sam2", "sam2": {**base, **sam2}}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A bright block drifting right and a green block, over noise; plus its exact masks."""
    root = tmp_path_factory.mktemp("sam2")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (T, H, W, 3)).astype(np.uint8)
    gt = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        frames[t, 10:30, 10 + 2 * t:40 + 2 * t] = 220
        gt[t, 10:30, 10 + 2 * t:40 + 2 * t] = 1
        frames[t, 36:56, 60:86] = (30, 200, 30)
        gt[t, 36:56, 60:86] = 2
    write_video(root / "v1.mp4", frames, fps=8)
    write_video_masks(root / "gt" / "v1", gt, {1: "visual_breakdown", 2: "attribute_shift"})
    row = {"video_id": "v1", "path": str(root / "v1.mp4"), "label": "broken", "generator": "tiny",
           "prompt_id": "p1", "fps": 8, "num_frames": T, "width": W, "height": H}
    return {"root": root, "row": row, "gt": gt}


PROMPTS = VideoPrompts({
    1: InstancePrompts("visual_breakdown", (
        FramePrompt(0, ((25.0, 20.0),), (1,)),
        FramePrompt(2, ((30.0, 20.0), (5.0, 5.0)), (1, 0)),  # a correction after propagation
    )),
    2: InstancePrompts("attribute_shift", (FramePrompt(1, (), (), (58.0, 33.0, 88.0, 58.0)),)),  # a box, later frame
})


@pytest.fixture(scope="module")
def annotator(video):
    path = video["root"] / "prompts.json"
    write_prompts(path, {"v1": PROMPTS, "n1": VideoPrompts({})})
    torch.manual_seed(0)
    return build_annotator(sam2_cfg(prompts_file=str(path)), str(video["root"] / "results"))


# --- SAM2 path ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def annotation(annotator, video):
    return annotator.annotate(video["row"])


def test_prompts_in_davis_masks_out(annotator, annotation, tmp_path):
    assert isinstance(annotator, Sam2Annotator)
    ann = annotation
    assert ann.masks.shape == (T, H, W) and ann.masks.dtype == np.uint8
    ids = set(np.unique(ann.masks).tolist()) - {0}
    assert ids <= {1, 2}
    assert set(ann.instances) == ids  # instances.json lists exactly the ids in the masks
    assert all(ann.instances[i] == PROMPTS.instances[i].subcategory for i in ids)

    out = tmp_path / "masks" / "v1"
    write_video_masks(out, ann.masks, ann.instances)
    assert sorted(p.name for p in out.glob("*.png")) == [f"{t:05d}.png" for t in range(T)]
    with Image.open(out / "00000.png") as img:
        assert img.mode == "P" and img.size == (W, H)
    assert np.array_equal(read_video_masks(out, T, (H, W)), ann.masks)
    assert read_instances(out) == ann.instances
    assert json.loads((out / "instances.json").read_text()) == {str(k): v for k, v in ann.instances.items()}


def test_same_prompts_same_masks(annotator, annotation, video):
    assert np.array_equal(annotator.annotate(video["row"]).masks, annotation.masks)


def test_initial_prompts_propagate_before_corrections(annotator, video):
    """Order of the SAM2 calls: every initial prompt, propagate both ways, corrections, propagate."""
    predictor = annotator.predictor
    assert predictor.add_all_frames_to_correct_as_cond  # corrections must survive re-propagation
    calls = []
    add, prop = predictor.add_new_points_or_box, predictor.propagate_in_video

    def spy_add(state, **kw):
        calls.append(("add", kw["obj_id"], kw["frame_idx"], kw["clear_old_points"]))
        return add(state, **kw)

    def spy_prop(state, reverse=False, **kw):
        calls.append(("propagate", reverse))
        return prop(state, reverse=reverse, **kw)

    predictor.add_new_points_or_box, predictor.propagate_in_video = spy_add, spy_prop
    try:
        annotator.annotate(video["row"])
    finally:
        del predictor.add_new_points_or_box, predictor.propagate_in_video
    assert calls == [("add", 1, 0, True), ("add", 2, 1, True), ("propagate", False), ("propagate", True),
                     ("add", 1, 2, False), ("propagate", False), ("propagate", True)]


def test_normal_video_listed_without_instances_is_empty(annotator, video):
    ann = annotator.annotate({**video["row"], "video_id": "n1", "label": "normal"})
    assert ann.masks.shape == (T, H, W) and not ann.masks.any() and ann.instances == {}


def test_broken_video_without_prompts_is_an_error(annotator, video):
    with pytest.raises(InputError, match=r"prompts\.json: no prompts for broken video 'x9'"):
        annotator.annotate({**video["row"], "video_id": "x9"})


def test_simulated_clicks_from_exact_masks(video):
    torch.manual_seed(0)
    ann_cfg = sam2_cfg(simulate={"clicks": 2, "gt_root": str(video["root"] / "gt")})
    annotator = build_annotator(ann_cfg, str(video["root"] / "results"))
    with annotator.session(video["row"]) as session:
        prompts = annotator.prompts_for(video["row"], session)
        assert sorted(prompts.instances) == [1, 2]
        first = prompts.instances[1].initial
        assert first.frame == 0 and first.labels[0] == 1 and first.points[0] == (24.0, 19.0)
        assert 1 <= len(first.points) <= 2
        ann = session.run(prompts)
    assert ann.masks.shape == (T, H, W)
    assert set(ann.instances) <= {1, 2}
    # the quality step on the same data: one row per budget, scores in [0, 1], and a figure
    df = evaluate(annotator, _videos_table(video), str(video["root"] / "gt"), [1, 2], "davis")
    assert list(df["clicks"]) == [1, 2]
    assert df[["J", "F", "JF"]].apply(lambda c: c.between(0, 1)).all().all()
    plot(summary(df), video["root"] / "quality.png", "davis")
    assert (video["root"] / "quality.png").stat().st_size > 0


def _videos_table(video):
    import pandas as pd

    return pd.DataFrame([{**video["row"], "sha256": "", "source": "test"}])


def test_merge_gives_overlaps_to_the_higher_logit():
    logits = torch.full((2, 1, 2, 3), -5.0)
    logits[0, 0, 0, :] = 2.0  # object 4 claims row 0
    logits[1, 0, :, 1] = 3.0  # object 7 claims column 1, more confidently
    logits[1, 0, 0, 2] = 1.0  # weaker than object 4 there
    assert merge_logits(logits, [4, 7]).tolist() == [[4, 7, 4], [0, 7, 0]]


# --- configuration errors ----------------------------------------------------------------------------

def _one_line_error(cfg) -> str:
    with pytest.raises(BrokenVideosError) as err:
        build_annotator(cfg, "results")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_checkpoint_names_file_and_source(tmp_path):
    prompts = tmp_path / "p.json"
    write_prompts(prompts, {})
    missing = tmp_path / "models" / "sam2.1_hiera_tiny.pt"
    msg = _one_line_error({"method": "sam2", "sam2": {"checkpoint": str(missing), "prompts_file": str(prompts)}})
    assert str(missing) in msg and "not found" in msg
    assert "sam2.1_hiera_tiny.pt" in msg and "facebookresearch/sam2" in msg and "annotate.sam2.checkpoint" in msg
    junk = tmp_path / "junk.pt"
    torch.save({"model": {"not_sam2": torch.zeros(1)}}, junk)
    msg = _one_line_error({"method": "sam2", "sam2": {"checkpoint": str(junk), "prompts_file": str(prompts),
                                                      "image_size": IMAGE_SIZE, "device": "cpu"}})
    assert msg.startswith(f"{junk}: not a SAM2 checkpoint for configs/sam2.1/sam2.1_hiera_t.yaml")


def test_unset_checkpoint_is_an_error_not_random_weights(tmp_path):
    prompts = tmp_path / "p.json"
    write_prompts(prompts, {})
    msg = _one_line_error({"method": "sam2", "sam2": {"prompts_file": str(prompts)}})
    assert "annotate.sam2.checkpoint is not set" in msg and "sam2.1_hiera_tiny.pt" in msg
    msg = _one_line_error({"method": "sam2", "sam2": {"allow_random_weights": True, "prompts_file": str(prompts)}})
    assert "annotate.sam2.checkpoint is not set" in msg  # the flag alone does not give random weights
    msg = _one_line_error({"method": "sam2", "sam2": {"checkpoint": None, "prompts_file": str(prompts)}})
    assert "annotate.sam2.checkpoint is null" in msg and "allow_random_weights" in msg


def test_bad_settings_are_named(tmp_path):
    prompts = tmp_path / "p.json"
    write_prompts(prompts, {})
    assert "image_size" in _one_line_error(sam2_cfg(prompts_file=str(prompts), image_size=100))
    assert "exactly one of prompts_file and simulate" in _one_line_error(sam2_cfg())
    assert "unknown keys ['checkpoints']" in _one_line_error(sam2_cfg(prompts_file=str(prompts), checkpoints="x"))
    assert "annotate.sam2.config" in _one_line_error(sam2_cfg(prompts_file=str(prompts), config="configs/nope.yaml"))
    if not torch.cuda.is_available():
        assert "no GPU" in _one_line_error(sam2_cfg(prompts_file=str(prompts), device="cuda"))


# --- prompt file ------------------------------------------------------------------------------------

def _write(tmp_path, doc) -> str:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _doc(prompt: dict, instance_id: str = "1", **instance) -> dict:
    inst = {"subcategory": "visual_breakdown", "prompts": [prompt], **instance}
    return {"version": 1, "videos": {"vid-1": {"instances": {instance_id: inst}}}}


@pytest.mark.parametrize("doc, where", [
    (_doc({"frame": 0, "points": [[1, 2]], "labels": [2]}), '$.videos["vid-1"].instances["1"].prompts[0].labels[0]'),
    (_doc({"frame": 0, "points": [[1, 2]], "labels": [1, 0]}),
     '$.videos["vid-1"].instances["1"].prompts[0]: 1 points but 2 labels'),
    (_doc({"frame": 0, "points": [[1, 2]]}), '$.videos["vid-1"].instances["1"].prompts[0]'),
    (_doc({"frame": -1, "box": [0, 0, 4, 4]}), '$.videos["vid-1"].instances["1"].prompts[0].frame'),
    (_doc({"frame": 0, "box": [5, 0, 4, 4]}), '$.videos["vid-1"].instances["1"].prompts[0].box'),
    (_doc({"frame": 0}), '$.videos["vid-1"].instances["1"].prompts[0]'),
    (_doc({"frame": 0, "box": [0, 0, 4, 4]}, instance_id="0"), '$.videos["vid-1"].instances'),
    ({"version": 1, "videos": {"v": {"instances": {"1": {"prompts": [{"frame": 0, "box": [0, 0, 1, 1]}]}}}}},
     '$.videos.v.instances["1"]: \'subcategory\' is a required property'),
    ({"videos": {}}, "$: 'version' is a required property"),
])
def test_prompt_file_errors_name_file_and_json_path(tmp_path, doc, where):
    path = _write(tmp_path, doc)
    with pytest.raises(InputError) as err:
        load_prompts(path)
    assert str(err.value).startswith(f"{path}: {where}")
    assert "\n" not in str(err.value)


def test_prompt_file_not_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{nope")
    with pytest.raises(InputError, match=r"p\.json: not valid JSON \(line 1"):
        load_prompts(path)


def test_prompts_outside_the_video_are_rejected(tmp_path):
    path = _write(tmp_path, _doc({"frame": 9, "points": [[1, 2]], "labels": [1]}))
    pf = load_prompts(path)
    with pytest.raises(InputError, match=r'instances\["1"\]\.prompts\[0\]\.frame: 9 is past the last frame \(3\)'):
        check_against_video(pf.for_video("vid-1"), "vid-1", pf.path, T, W, H)
    pf = load_prompts(_write(tmp_path, _doc({"frame": 0, "points": [[500, 2]], "labels": [1]})))
    with pytest.raises(InputError, match="outside the 96x64 frame"):
        check_against_video(pf.for_video("vid-1"), "vid-1", pf.path, T, W, H)


def test_prompt_file_round_trip(tmp_path):
    write_prompts(tmp_path / "p.json", {"v1": PROMPTS})
    assert load_prompts(tmp_path / "p.json").videos == {"v1": PROMPTS}


# --- exports ----------------------------------------------------------------------------------------

def test_overlay_video_and_coco_rle(video, tmp_path):
    gt = video["gt"]
    instances = {1: "visual_breakdown", 2: "attribute_shift"}
    write_overlay(video["row"]["path"], gt, instances, tmp_path / "overlay.mp4")
    info = probe_video(tmp_path / "overlay.mp4")
    assert (info["num_frames"], info["width"], info["height"]) == (T, W, H)
    overlay, original = read_video(tmp_path / "overlay.mp4").astype(int), read_video(video["row"]["path"]).astype(int)
    assert np.abs(overlay - original)[gt > 0].mean() > 20  # instances are coloured in

    write_coco_rle(gt, instances, tmp_path / "v1.rle.json")
    doc = json.loads((tmp_path / "v1.rle.json").read_text())
    assert [e["id"] for e in doc["instances"]] == [1, 2]
    assert isinstance(doc["instances"][0]["segmentations"][0]["counts"], str)
    assert np.array_equal(decode_coco_rle(doc), gt)
    from pycocotools import mask as mask_utils

    seg = doc["instances"][1]["segmentations"][2]
    assert np.array_equal(mask_utils.decode(seg).astype(bool), gt[2] == 2)


def test_coco_rle_keeps_absent_frames_as_null():
    masks = np.zeros((3, 8, 10), np.uint8)
    masks[1, 2:4, 3:7] = 5
    doc = encode_coco_rle(masks, {5: "motion_anomaly", 6: "symbol_confusion"})
    five, six = doc["instances"]
    assert five["segmentations"][0] is None and five["areas"] == [0, 8, 0] and five["bboxes"][1] == [3, 2, 4, 2]
    assert six["segmentations"] == [None, None, None]
    assert np.array_equal(decode_coco_rle(doc), masks)
