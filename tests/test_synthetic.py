"""The synthetic generator: exact masks, clean normal/real videos, determinism, distinct families, and
byte-identical output through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, run_generation

from brokenvideos.config import derive_seed
from brokenvideos.generators.synthetic.artifacts import INJECTORS, SUBJECT_LEVEL
from brokenvideos.generators.synthetic.families import FAMILIES, REAL_FAMILIES
from brokenvideos.generators.synthetic.generator import SyntheticGenerator
from brokenvideos.io.masks import read_instances, read_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video
from brokenvideos.prompts.taxonomy import renderable

RENDERABLE = renderable()

VIDEO = {"width": 64, "height": 48, "num_frames": 6, "fps": 6}
SCENES = ["human", "vehicle", "robotic", "fauna_flora", "urban", "virtual", "natural_landscape"]
GENERATED_FAMILIES = [f for f in FAMILIES if f not in REAL_FAMILIES]


def make_generator(family: str, **video) -> SyntheticGenerator:
    return SyntheticGenerator({"name": f"synth-{family}", "backend": "synthetic", "family": family},
                              {**VIDEO, **video}, run_seed=0)


def make_prompt(subcategory: str, i: int, num_regions: int = 2) -> dict:
    label = "normal" if subcategory == "normal" else "broken"
    return {"prompt_id": f"p{i:05d}", "seed": derive_seed("test", subcategory, i), "scene": SCENES[i % len(SCENES)],
            "subcategory": subcategory, "num_regions": 0 if label == "normal" else num_regions, "label": label}


def prompts_covering_every_injector(subcategory: str) -> list[dict]:
    """Prompts of this subcategory whose plans, together, use every injector that renders it."""
    gen = make_generator("grainy")
    wanted, chosen = set(INJECTORS[subcategory]), []
    for i in range(200):
        prompt = make_prompt(subcategory, i, num_regions=1 + i % 3)
        _, mods, regions, _ = gen.plan(prompt)
        kinds = {m.kind for m in mods} | {r.kind for r in regions}
        if kinds & wanted:
            chosen.append(prompt)
            wanted -= kinds
        if not wanted:
            return chosen
    raise AssertionError(f"no prompt plans injectors {wanted} for {subcategory}")


def test_injectors_cover_every_renderable_subcategory():
    assert set(INJECTORS) == set(RENDERABLE)
    assert SUBJECT_LEVEL < {k for kinds in INJECTORS.values() for k in kinds}


@pytest.mark.parametrize("family", GENERATED_FAMILIES)
@pytest.mark.parametrize("subcategory", RENDERABLE)
def test_mask_is_exactly_where_frames_differ_from_clean_render(subcategory, family):
    from scipy.ndimage import binary_dilation

    gen = make_generator(family)
    for prompt in prompts_covering_every_injector(subcategory):
        seed = derive_seed(0, gen.name, prompt["prompt_id"])
        raw, raw_clean, raw_masks, raw_instances = gen.render_raw(prompt)
        frames, masks, instances = gen.render(prompt, seed)
        clean, clean_masks, clean_instances = gen.render(prompt, seed, with_artifacts=False)
        assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8
        assert masks.shape == (6, 48, 64) and masks.dtype == np.uint8
        assert not clean_masks.any() and clean_instances == {}
        np.testing.assert_array_equal(masks, raw_masks)
        assert instances == raw_instances
        # exact before the fingerprint: a pixel is labelled iff the render differs there
        changed = (raw != raw_clean).any(-1)
        assert changed.any(), f"{subcategory}/{family}: broken prompt rendered no artifact"
        np.testing.assert_array_equal(masks > 0, changed)
        # the fingerprint (applied last, to the whole frame) spreads a change by its filter support
        # only: at most one frame (smoother's temporal taps) and six pixels (upsampler: 2× area down,
        # bicubic up)
        after = (frames != clean).any(-1)
        near = binary_dilation(masks > 0, structure=np.ones((3, 13, 13), bool))
        assert not (after & ~near).any(), f"{subcategory}/{family}: change far from the mask"
        # every declared instance is non-empty, every id in the masks is declared, all of this subcategory
        ids = set(np.unique(masks).tolist()) - {0}
        assert ids == set(instances)
        assert set(instances.values()) == {subcategory}
        assert len(instances) <= prompt["num_regions"]


def test_artifact_regions_carry_the_family_fingerprint():
    # Fingerprint after artifacts: the upsampler's checkerboard is as strong inside a region artifact
    # as outside it (before, artifacts were drawn over it, and "trace missing" gave them away).
    gen = make_generator("upsampler", width=128, height=96, num_frames=8)
    ratios = []
    for i, sub in enumerate(["symbol_confusion", "perceptual_overload", "style_inconsistency"]):
        prompt = make_prompt(sub, i, num_regions=2)
        frames, masks, _ = gen.render(prompt, seed=1)
        x = frames.astype(np.float64).mean(-1)
        grid = (np.indices(x.shape[1:]).sum(0) % 2) * 2 - 1
        # the checkerboard's amplitude: the response to a ±1 pattern, minus its local mean
        resp = (x[:, :, :-1] - x[:, :, 1:]) * grid[None, :, :-1]
        inside, outside = masks[:, :, :-1] > 0, masks[:, :, :-1] == 0
        ratios.append(resp[inside].mean() / resp[outside].mean())
    assert 0.6 < min(ratios) and max(ratios) < 1.4, ratios


@pytest.mark.parametrize("family", FAMILIES)
def test_normal_prompt_has_all_zero_masks(family):
    gen = make_generator(family)
    for i in range(3):
        prompt = make_prompt("normal", i)
        video = gen.generate(prompt, seed=11 + i)
        assert not video.masks.any() and video.instances == {}
        clean, _, _ = gen.render(prompt, 11 + i, with_artifacts=False)
        np.testing.assert_array_equal(video.frames, clean)
        assert video.label == ("real" if family in REAL_FAMILIES else "normal")


@pytest.mark.parametrize("subcategory", RENDERABLE)
def test_camera_family_is_real_and_clean_even_for_broken_prompts(subcategory):
    gen = make_generator("camera")
    prompt = make_prompt(subcategory, 0, num_regions=4)
    video = gen.generate(prompt, seed=5)
    assert video.label == "real"
    assert not video.masks.any() and video.instances == {}
    clean, _, _ = gen.render(prompt, 5, with_artifacts=False)
    np.testing.assert_array_equal(video.frames, clean)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_video_other_seed_other_noise(family):
    prompt = make_prompt("visual_breakdown", 3, num_regions=3)
    a = make_generator(family).generate(prompt, seed=42)
    b = make_generator(family).generate(prompt, seed=42)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.instances == b.instances and a.params == b.params
    c = make_generator(family).generate(prompt, seed=43)
    if family in ("camera",):  # per-video shot noise comes from the video seed
        assert not np.array_equal(a.frames, c.frames)
    else:  # scene and artifact plan come from the prompt seed; these fingerprints are seed-free
        np.testing.assert_array_equal(a.frames, c.frames)


def test_families_differ_on_the_same_prompt():
    prompt = make_prompt("attribute_shift", 1)
    videos = {f: make_generator(f).generate(prompt, seed=7).frames.astype(np.float32) for f in FAMILIES}
    for i, fa in enumerate(FAMILIES):
        for fb in FAMILIES[i + 1:]:
            mad = np.abs(videos[fa] - videos[fb]).mean()
            assert mad > 1.0, f"{fa} vs {fb}: mean abs difference {mad:.2f}"
    # same scene underneath: the families agree far better with each other than with another prompt
    other = make_generator("upsampler").generate(make_prompt("attribute_shift", 2), seed=7).frames.astype(np.float32)
    assert np.abs(videos["upsampler"] - videos["smoother"]).mean() < np.abs(videos["upsampler"] - other).mean()


def test_generated_families_share_the_artifact_plan():
    # families differ only by fingerprint: the same prompt yields the same instances
    prompt = make_prompt("perceptual_overload", 4, num_regions=2)
    plans = {f: make_generator(f).generate(prompt, seed=9).instances for f in GENERATED_FAMILIES}
    assert len({json.dumps(p, sort_keys=True) for p in plans.values()}) == 1


# ---- through the CLI: two runs in two results dirs -------------------------------------------------

def _tree(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from conftest import write_config

    roots = []
    for name in ("run-a", "run-b"):
        path = write_config(tmp_path_factory.mktemp(name))
        run_generation(path)
        roots.append(path.parent)
    return roots


def test_cli_runs_give_identical_prompts_masks_and_manifests(two_runs):
    a, b = two_runs
    for pattern in ("results/prompts/*.parquet", "results/videos/*/shard-*.parquet", "results/videos/*/*.json",
                    "results/generated_masks/*/*.png", "results/generated_masks/*/instances.json"):
        ta, tb = _tree(a, pattern), _tree(b, pattern)
        assert ta, f"nothing matched {pattern}"
        assert ta.keys() == tb.keys(), pattern
        different = [k for k in ta if ta[k] != tb[k]]
        assert not different, f"{pattern}: bytes differ in {different[:3]}"


def test_cli_runs_give_identical_decoded_frames_and_identical_mp4_bytes(two_runs):
    # libx264 runs single-threaded with no version/timestamp metadata, so the mp4 bytes match too.
    a, b = two_runs
    mp4s = sorted(p.relative_to(a) for p in a.glob("results/videos/*/*.mp4"))
    assert len(mp4s) == 10 * 3  # 10 prompts × 3 generators
    for rel in mp4s:
        np.testing.assert_array_equal(read_video(a / rel), read_video(b / rel), err_msg=str(rel))
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_cli_outputs_follow_the_contracts(two_runs):
    root = two_runs[0]
    prompts = read_table(root / "results/prompts/prompts.parquet", kind="prompts").set_index("prompt_id")
    manifests = [read_table(p, kind="videos") for p in sorted(root.glob("results/videos/*/shard-*.parquet"))]
    videos = __import__("pandas").concat(manifests, ignore_index=True)
    assert len(videos) == 30 and videos.video_id.is_unique and (videos.status == "ok").all()
    for row in videos.itertuples():
        assert not Path(row.path).is_absolute() and (root / row.path).is_file()
        assert (row.num_frames, row.height, row.width, row.fps) == (6, 48, 64, 6.0)
        if row.generator == "real-camera":
            assert row.label == "real"
        else:
            assert row.label == prompts.loc[row.prompt_id, "label"]
        masks = read_video_masks(root / row.generated_mask_dir, 6, (48, 64))
        instances = read_instances(root / row.generated_mask_dir)
        ids = set(np.unique(masks).tolist()) - {0}
        assert ids == set(instances) and row.num_instances == len(ids)
        if row.label in ("normal", "real"):
            assert not ids
        else:
            assert ids and set(instances.values()) == {prompts.loc[row.prompt_id, "subcategory"]}


def test_generate_rerun_reuses_finished_videos(two_runs, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(two_runs[0], root)
    mp4 = root / "results/videos/synth-grainy/synth-grainy-p00003.mp4"
    before = {p: p.stat().st_mtime_ns for p in root.glob("results/videos/synth-grainy/*.mp4")}
    mp4.write_bytes(b"tampered")  # the recorded sha256 no longer matches: only this one is redone
    result = run_cli(["generate", "--config", "config.yaml", "--generator", "synth-grainy", "--shard", "0"],
                     cwd=root)
    assert result.code == 0, result.stderr
    assert "10 prompts, 9 already done, 1 to generate" in result.stderr
    assert mp4.read_bytes() == (two_runs[0] / mp4.relative_to(root)).read_bytes()
    after = {p: p.stat().st_mtime_ns for p in before}
    assert [p.name for p in before if before[p] != after[p]] == [mp4.name]
