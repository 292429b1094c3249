"""Detection building blocks against hand computations and outside references: CA fusion (He et
al. eqs. 2-3), NPR's residual, the ImageNet EfficientNet-Lite0 from its wheel, offline encoder
errors, metrics vs scikit-learn, prompt-grouped splits, the real-only frame predictor data, its
motion compensation and what it keeps in R̂, the local branch's high-pass, per-detector crops, the
Sora-label mapping, and the single-video command on bad files."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from brokenvideos.detect import build_detector
from brokenvideos.models.backbones import FrozenImageEncoder
from brokenvideos.detect.data import make_detection_splits, subset
from brokenvideos.detect.frame_baselines import npr_residual
from brokenvideos.detect.metrics import average_precision, detection_metrics, f1, roc_auc
from brokenvideos.detect.predictor_step import real_training_rows
from brokenvideos.detect.scoring import clipset_for, score_clipset
from brokenvideos.detect.sora import LABELS, SUBCATEGORY_TO_LABEL, frame_labels
from brokenvideos.detect.temporal_defect import CAFusion
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.tables import write_table
from brokenvideos.io.video import write_video

torch.set_num_threads(1)


def test_ca_fusion_matches_the_papers_equations():
    ca = CAFusion(4, reduction=2).eval()  # W1: 2x4, W2: 4x2; BN in eval with identity statistics
    with torch.no_grad():
        ca.w1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, -1.0]]))
        ca.w2.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [0.5, 0.5]]))
    f_local = torch.tensor([[1.0, 2.0, 0.0, -1.0]])
    f_glob = torch.tensor([[0.0, -1.0, 2.0, 1.0]])
    # f_t = f_local + f_glob = [1, 1, 2, 0]; W1 f_t = [1, 2]; ReLU -> [1, 2]; W2 -> [1, 2, -1, 1.5]
    eps = ca.bn1.eps
    s = 1 / np.sqrt(1 + eps)  # BN(x) = x / sqrt(1 + eps) with mean 0, var 1, γ 1, β 0
    z = np.array([1.0, 2.0, -1.0, 1.5]) * s * s
    rho = 1 / (1 + np.exp(-z))
    expected = rho * f_local.numpy()[0] + (1 - rho) * f_glob.numpy()[0]
    np.testing.assert_allclose(ca(f_local, f_glob).detach().numpy()[0], expected, rtol=1e-6)


def test_npr_residual_is_zero_on_2x2_constant_blocks():
    blocks = torch.rand(2, 3, 5, 6)
    img = blocks.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # 10 x 12, constant per 2x2
    assert torch.count_nonzero(npr_residual(img)) == 0
    assert torch.count_nonzero(npr_residual(torch.rand(2, 3, 10, 12))) > 0


def test_efficientnet_lite0_from_its_wheel_knows_imagenet():
    from skimage import data

    enc = FrozenImageEncoder("efficientnet_lite0", input_size=224)
    assert enc.dim == 1280
    for name, cls in (("chelsea", 285), ("coffee", 967)):  # Egyptian cat, espresso
        x = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float()[None] / 255
        assert int(enc.classify(x).argmax()) == cls, name


@pytest.mark.parametrize("spec", ["timm:beitv2_base_patch16_224.in1k_ft_in22k_in1k", "hf:microsoft/beit-base-patch16-224",
                                  "/no/such/encoder", "efficientnet_lite9"])
def test_missing_encoder_is_one_line_naming_it(spec, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # as when huggingface_hub was imported before the variable was set (it reads it once, at import;
    # `import timm` imports it): the spec must still fail at once, not after an online lookup that,
    # with no network, retries for ~50 s
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    t0 = time.perf_counter()
    with pytest.raises(BrokenVideosError) as err:
        FrozenImageEncoder(spec)
    assert spec in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - t0 < 25


def test_metrics_match_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 200))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = rng.integers(0, 6, n) / 5.0  # few distinct values: many ties, some exactly 0.5
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
        pred = (s >= 0.5).astype(int)
        assert f1(y, pred, 1) == pytest.approx(f1_score(y, pred, pos_label=1))
        assert f1(y, pred, 0) == pytest.approx(f1_score(y, pred, pos_label=0))
    det = pd.DataFrame({"video_id": ["a", "a", "b", "b"], "clip": [0, 3, 0, 3], "score": [0.9, 0.3, 0.5, 0.1],
                        "label": [1, 1, 0, 0]})
    m = detection_metrics(det)
    assert m["threshold"] == 0.5 and m["accuracy_clip"] == 0.5
    # clips: 0.9 right, 0.3 wrong, 0.5 counts as generated (wrong), 0.1 right; videos: a 0.6, b 0.3 both right
    assert m["accuracy_video"] == 1.0
    assert set(m) >= {"accuracy_clip", "accuracy_video", "auc", "ap", "f1_real", "f1_fake", "threshold"}


def _table(num_prompts=20):
    rows = []
    for p in range(num_prompts):
        for gen, label in (("real-camera", "real"), ("synth-a", "broken" if p % 4 else "normal"), ("synth-b", "broken")):
            rows.append({"video_id": f"{gen}-p{p:03d}", "generator": gen, "prompt_id": f"p{p:03d}", "path": f"{gen}-{p}.mp4",
                         "label": label, "num_frames": 16, "width": 64, "height": 48, "mask_dir": "",
                         "instance_subcategories": "{}", "is_generated": int(label != "real")})
    return pd.DataFrame(rows)


def test_splits_are_grouped_by_prompt_and_paper_is_8_1_1():
    out = make_detection_splits(_table(40), {"by": "paper"}, seed=3)
    assert out.groupby("prompt_id").split.nunique().max() == 1
    counts = out.groupby("split").prompt_id.nunique()
    assert counts.to_dict() == {"train": 32, "val": 4, "test": 4}
    sub = subset(out, "train", "synth-a")
    assert set(sub.generator) == {"synth-a", "real-camera"}


def test_frame_predictor_trains_on_real_training_videos_only(tmp_path):
    table = make_detection_splits(_table(20), {"by": "paper"}, seed=0)
    write_table(table, tmp_path / "s.parquet", kind="splits")
    rows = real_training_rows(tmp_path / "s.parquet")
    assert rows and all(r["label"] == "real" and r["split"] == "train" for r in rows)
    assert len(rows) == int(((table.split == "train") & (table.label == "real")).sum())
    write_table(table[table.label != "real"], tmp_path / "fake.parquet", kind="splits")
    with pytest.raises(BrokenVideosError, match="no real videos"):
        real_training_rows(tmp_path / "fake.parquet")


def test_the_local_branch_high_pass_ignores_a_uniform_error_and_keeps_a_checkerboard():
    torch.manual_seed(0)
    model = build_detector("temporal_defect", encoder="random:resnet_tiny", local_backbone="resnet_tiny", dim=16,
                           heads=2, fusion="local", clip_len=5).eval()
    err = torch.rand(2, 3, 16, 16) * 0.01
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float() * 0.01
    with torch.no_grad():
        f = model.f_local({"error_map": err})
        torch.testing.assert_close(model.f_local({"error_map": err + 0.05}), f)  # a uniform offset is filtered out
        assert not torch.allclose(model.f_local({"error_map": err + checker}), f, atol=1e-4)


def test_a_detector_entry_may_set_its_own_training_crop():
    from brokenvideos.config import with_defaults
    from brokenvideos.detect.train_step import detector_jobs

    tiny = {"encoder": "random:resnet_tiny", "local_backbone": "resnet_tiny", "dim": 16, "heads": 2}
    settings = with_defaults({"detect": {"crop": [32, 32], "detectors": {
        "own": {"detector": "temporal_defect", "crop": [48, 48], "kwargs": tiny},
        "whole": {"detector": "temporal_defect", "crop": None, "kwargs": tiny},
        "shared": {"detector": "temporal_defect", "kwargs": tiny}}}}, "detect")
    table = make_detection_splits(_table(20), {"by": "paper"}, seed=0)
    crops = {name: {j["crop"] and tuple(j["crop"]) for j in detector_jobs(settings, table, name, None, None, None)}
             for name in ("own", "whole", "shared")}
    assert crops == {"own": {(48, 48)}, "whole": {None}, "shared": {(32, 32)}}


def test_a_detection_recipe_with_an_unknown_schedule_fails_before_training():
    from brokenvideos.detect.settings import resolve_recipe

    assert resolve_recipe({"recipe": "cpu_default"})["schedule"] == "warmup_cosine"
    assert resolve_recipe({"recipe": "paper"})["schedule"] == "constant"
    with pytest.raises(BrokenVideosError, match="unknown schedule 'cosine'"):
        resolve_recipe({"recipe": "cpu_default", "overrides": {"schedule": "cosine"}})


def test_feature_dropout_acts_on_the_frozen_features_in_training_only():
    feats = {"features": torch.rand(4, 5, 64)}  # random:resnet_tiny pools to 64 channels

    def f_glob(p: float, training: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = build_detector("temporal_defect", encoder="random:resnet_tiny", dim=16, heads=2, fusion="glob",
                               clip_len=5, dropout=0.0, feature_dropout=p)
        model.train(training)
        with torch.no_grad():
            return model.f_glob(feats)

    torch.testing.assert_close(f_glob(0.5, False), f_glob(0.0, False))
    torch.testing.assert_close(f_glob(0.0, True), f_glob(0.0, False))  # no other randomness in the branch
    assert not torch.allclose(f_glob(0.5, True), f_glob(0.0, False))


def test_detector_training_decays_the_learning_rate_as_its_recipe_says(tmp_path):
    from brokenvideos.detect.loop import train_in_process

    rng = np.random.default_rng(0)
    write_video(tmp_path / "real.mp4", rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8), fps=8)
    job = {"kind": "predictor", "key": "frame_predictor", "kwargs": {"width": 4, "motion": "none"},
           "crop": None, "rows": [{"path": str(tmp_path / "real.mp4")}]}
    lrs = {}
    for schedule in ("constant", "warmup_cosine"):
        recipe = {"epochs": 4, "batch_size": 2, "lr": 0.01, "schedule": schedule, "warmup_steps": 0}
        _, history = train_in_process({**job, "recipe": recipe}, {}, seed=0)
        lrs[schedule] = [h["lr"] for h in history]  # the last step's rate, 2 steps an epoch of 4 triplets
    assert lrs["constant"] == [0.01] * 4
    expected = [0.01 * 0.5 * (1 + np.cos(np.pi * step / 8)) for step in (1, 3, 5, 7)]
    np.testing.assert_allclose(lrs["warmup_cosine"], expected, rtol=1e-9)


def _panning_clip(frames: int, step: tuple[int, int], size=(48, 64), seed=0) -> torch.Tensor:
    """A smooth random texture translated by a whole number of pixels per frame: (T, 3, H, W)."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((size[0] * 2, size[1] * 2, 3)).astype(np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min())
    dy, dx = step
    crops = [big[20 + t * dy:20 + t * dy + size[0], 20 + t * dx:20 + t * dx + size[1]] for t in range(frames)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def test_frame_predictor_extrapolates_motion_at_constant_velocity():
    from brokenvideos.detect.predictor import FramePredictor, extrapolate

    clip = _panning_clip(3, (1, 2))
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # borders are reflected, not known
    warped = extrapolate(clip[None, 0], clip[None, 1])
    copy_error = (clip[None, 1] - clip[None, 2])[inner].abs().mean()
    warp_error = (warped - clip[None, 2])[inner].abs().mean()
    assert warp_error < 0.15 * copy_error
    # the untrained model is the warp itself (its correction starts at zero); "none" repeats f_{t+1}
    with torch.no_grad():
        torch.testing.assert_close(FramePredictor()(clip[None, 0], clip[None, 1]), warped)
        torch.testing.assert_close(FramePredictor(motion="none")(clip[None, 0], clip[None, 1]), clip[None, 1])
    with pytest.raises(BrokenVideosError, match="motion"):
        FramePredictor(motion="dmvfn")


def test_a_pattern_fixed_on_the_pixel_grid_survives_temporal_aggregation_only_with_the_warp():
    """He et al.'s R̂ = mean_t r_t: copying f_{t+1} telescopes to (f_2 - f_T)/(T-2), so a fixed
    pattern (an upsampler's checkerboard) cancels; motion-compensated resampling keeps it."""
    from brokenvideos.detect.predictor import FramePredictor

    clip = _panning_clip(7, (0, 1))
    h, w = clip.shape[-2:]
    checker = torch.from_numpy(((np.indices((h, w)).sum(0) % 2) * 2 - 1).astype(np.float32)) * (2 / 255)
    inner = (slice(None), slice(8, -8), slice(8, -8))

    def checker_correlation(motion: str, frames: torch.Tensor) -> float:
        with torch.no_grad():
            r_hat = FramePredictor(motion=motion).errors(frames[None])[0].mean(0)
        return float((r_hat * checker)[inner].mean() / (checker ** 2).mean())

    marked = clip + checker
    assert abs(checker_correlation("none", marked)) < 0.05
    assert checker_correlation("flow", marked) < -0.5  # r = f̂ - f: the pattern, negated
    assert abs(checker_correlation("flow", clip)) < 0.05


def test_sora_mapping_covers_the_taxonomy_and_labels_frames(tmp_path):
    from brokenvideos.prompts.taxonomy import SUBCATEGORIES

    assert set(SUBCATEGORY_TO_LABEL) == set(SUBCATEGORIES)
    assert set(SUBCATEGORY_TO_LABEL.values()) == set(range(len(LABELS)))
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[0, :2, :2] = 1  # visual_breakdown in frame 0 -> boundary/edge
    masks[2, 4:, 4:] = 2  # logical_disjunction in frame 2 -> object mismatch
    write_video_masks(tmp_path / "m", masks, {1: "visual_breakdown", 2: "logical_disjunction"})
    labels = frame_labels(tmp_path / "m", {1: "visual_breakdown", 2: "logical_disjunction"}, 3)
    assert labels.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_detect_command_scores_a_video_and_isolates_bad_files(tmp_path):
    torch.manual_seed(0)
    model = build_detector("cnnspot", backbone="resnet_tiny", clip_len=5)
    model.save_pretrained(tmp_path / "model")
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    write_video(folder / "good.mp4", rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8), fps=8)
    write_video(folder / "short.mp4", rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8), fps=8)
    (folder / "corrupt.mp4").write_bytes(b"not a video at all")
    one = run_cli(["detect", folder / "good.mp4", "--model", tmp_path / "model", "--stride", "2"])
    assert one.code == 0, one.stderr
    out = json.loads(one.stdout)
    assert len(out["clips"]) == 3 and out["threshold"] == 0.5
    assert out["score"] == pytest.approx(np.mean([c["score"] for c in out["clips"]]))
    assert out["verdict"] == ("generated" if out["score"] >= 0.5 else "real")
    res = run_cli(["detect", "--folder", folder, "--model", tmp_path / "model", "--out", tmp_path / "t.csv"])
    assert res.code == 0, res.stderr
    errors = res.error_lines
    assert len(errors) == 2 and any("short.mp4" in e and "fewer than one clip" in e for e in errors)
    assert any("corrupt.mp4" in e for e in errors)
    table = pd.read_csv(tmp_path / "t.csv").set_index("video")
    assert table.loc[str(folder / "good.mp4"), "verdict"] in ("generated", "real")
    assert (table.verdict == "error").sum() == 2
    missing = run_cli(["detect", folder / "good.mp4", "--model", tmp_path / "nope"])
    assert missing.code == 2 and "nope" in missing.error


def test_a_frame_scoring_detector_scores_each_clip_of_a_set_as_clip_by_clip(tmp_path):
    """detect-evaluate's per-video path for CNNSpot/NPR gives every clip row its own score, in order."""
    torch.manual_seed(0)
    model = build_detector("cnnspot", backbone="resnet_tiny", clip_len=5).eval()
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate((9, 12)):
        write_video(tmp_path / f"v{i}.mp4", rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), fps=8)
        rows.append({"video_id": f"v{i}", "path": str(tmp_path / f"v{i}.mp4"), "is_generated": i})
    settings = {"stride": 2}
    for crop in (None, [16, 16]):
        clips = clipset_for(model, rows, settings, crop=crop)
        framewise = score_clipset(model, clips)
        type(model).SCORES_FRAMES = False
        try:
            clipwise = score_clipset(model, clips)
        finally:
            type(model).SCORES_FRAMES = True
        assert framewise[["video_id", "clip", "label"]].equals(clipwise[["video_id", "clip", "label"]])
        assert len(framewise) == 3 + 4
        np.testing.assert_allclose(framewise.score, clipwise.score, rtol=0, atol=1e-6)


def test_a_whole_video_tensor_is_refused_for_random_crops_and_centred_otherwise():
    """ClipSet.video_tensor serves the per-video scoring path: one window for every clip. A random
    crop differs clip by clip, so it must refuse; a centred crop is each clip's own window."""
    from brokenvideos.detect.clips import ClipSet

    frames = np.random.default_rng(0).integers(0, 255, (9, 24, 32, 3), dtype=np.uint8)
    rows = [{"video_id": "v", "path": "v.mp4", "is_generated": 1}]
    random_crops = ClipSet(rows, clip_len=5, stride=2, crop=[16, 16], decoded={"v": frames})
    with pytest.raises(ValueError, match="clip by clip"):
        random_crops.video_tensor("v")
    centred = ClipSet(rows, clip_len=5, stride=2, crop=[16, 16], random_crop=False, decoded={"v": frames})
    whole = centred.video_tensor("v")
    assert whole.shape[0] == 9 and tuple(whole.shape[-2:]) == (16, 16)
    for i, (_, start, _) in enumerate(centred.items):
        torch.testing.assert_close(centred.item(i)[0]["frames"], whole[start:start + 5], rtol=0, atol=0)


def test_detect_evaluate_writes_the_contract_each_test_video_decoded_once(tmp_path, monkeypatch):
    """evaluate_detector: one folder per (training set, test set) with detections.parquet and
    metrics.json; a test set is its generator's test videos plus every real test video; the metrics
    are scikit-learn's on those rows; every trained model scores the same decoded videos."""
    import brokenvideos.detect.data as data
    from brokenvideos.config import load_config
    from brokenvideos.detect.evaluate_step import evaluate_detector, read_detections

    table = make_detection_splits(_table(10), {"by": "ratios", "train": 0.4, "val": 0.2, "test": 0.4}, seed=0)
    rng = np.random.default_rng(0)
    for r in table.itertuples():
        if r.split == "test":
            write_video(tmp_path / r.path, rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8), fps=8)
    table["path"] = [str(tmp_path / p) for p in table.path]
    write_table(table, tmp_path / "splits.parquet", kind="splits")
    gens = ["synth-a", "synth-b"]
    for i, g in enumerate(gens):
        torch.manual_seed(i)
        build_detector("cnnspot", backbone="resnet_tiny", clip_len=5).save_pretrained(tmp_path / "models" / g)
    decodes = []
    real_read = data.read_video
    monkeypatch.setattr(data, "read_video", lambda path: decodes.append(path) or real_read(path))
    cfg = load_config("config.yaml") | {"results": str(tmp_path / "results")}
    results = evaluate_detector(cfg, "cnnspot", tmp_path / "models", tmp_path / "splits.parquet", tmp_path / "eval")
    test = table[table.split == "test"]
    assert sorted(decodes) == sorted(test.path) and set(results) == {(a, b) for a in gens for b in gens}
    for (train, gen), m in results.items():
        det = read_detections(tmp_path / "eval" / train / gen / "detections.parquet")
        want = test[(test.generator == gen) | (test.is_generated == 0)]
        assert set(det.video_id) == set(want.video_id)
        assert all(c == [0, 3] for c in det.groupby("video_id").clip.apply(list))  # 9 frames, clips of 5 every 3
        assert m == json.loads((tmp_path / "eval" / train / gen / "metrics.json").read_text())
        assert m["auc"] == pytest.approx(roc_auc_score(det.label, det.score))
        assert m["accuracy_clip"] == pytest.approx(((det.score >= 0.5) == det.label).mean())


def test_a_shared_decoded_video_too_short_for_a_models_clips_is_one_line_naming_it():
    from brokenvideos.detect.clips import ClipSet
    from brokenvideos.errors import InputError

    rows = [{"video_id": "v", "path": "videos/v.mp4", "is_generated": 1}]
    decoded = {"v": np.zeros((6, 16, 16, 3), np.uint8)}  # read earlier for a model with clips of 5
    assert len(ClipSet(rows, 5, 3, decoded=decoded)) == 1
    with pytest.raises(InputError, match="v.mp4.*6 frames, fewer than one clip of 7") as err:
        ClipSet(rows, 7, 3, decoded=decoded)
    assert "\n" not in str(err.value)


def test_missing_frozen_encoder_fails_the_detect_command_at_once(tmp_path):
    torch.manual_seed(0)
    model = build_detector("temporal_defect", encoder="random:resnet_tiny", local_backbone="resnet_tiny", dim=16,
                           heads=2, clip_len=5)
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["kwargs"]["encoder"] = "timm:not_in_any_cache_model"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    res = run_cli(["detect", tmp_path / "whatever.mp4", "--model", tmp_path / "m"])
    assert res.code == 2 and "timm:not_in_any_cache_model" in res.error
