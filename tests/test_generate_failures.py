"""A failing video fails the generate step with the video named, unless the run tolerates it
(`generate.allow_failures`), and tolerated failures are counted in stats.json."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, run_pipeline

from brokenvideos.generators.synthetic import artifacts


@pytest.fixture
def broken_injector(monkeypatch):
    """Every region artifact raises, as a bug in an injector would."""
    def boom(img, region, rng, k):
        raise ValueError("injector bug")

    for kind in list(artifacts._INJECT):
        monkeypatch.setitem(artifacts._INJECT, kind, boom)


def _generate(cfg, gen="synth-grainy", shard=0):
    assert run_cli(["prompts", "--config", cfg], cwd=cfg.parent).code == 0
    return run_cli(["generate", "--config", cfg, "--generator", gen, "--shard", shard], cwd=cfg.parent)


def test_a_failing_injector_fails_the_step_with_the_video_named(tiny_config, broken_injector):
    cfg = tiny_config(prompts={"num_prompts": 10, "normal_fraction": 0.3, "subcategories": ["visual_breakdown"]})
    result = _generate(cfg)
    assert result.code == 2
    assert result.error.startswith("error: synth-grainy-p0")
    assert "generation failed: ValueError: injector bug" in result.error
    assert not (cfg.parent / "results/videos/synth-grainy/shard-0.parquet").exists()
    # videos finished before the failure keep their records: a re-run after the fix resumes
    done = list((cfg.parent / "results/videos/synth-grainy").glob("*.json"))
    assert all(json.loads(p.read_text())["status"] == "ok" for p in done)


def test_allowed_failures_are_recorded_and_counted(tiny_config, monkeypatch):
    # one video fails: p00004's glyphs (symbol confusion is the only subcategory, so it is broken)
    original = artifacts._INJECT["glyphs"]
    calls = {"n": 0}

    def flaky(img, region, rng, k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("injector bug")
        return original(img, region, rng, k)

    monkeypatch.setitem(artifacts._INJECT, "glyphs", flaky)
    cfg = tiny_config(prompts={"num_prompts": 10, "normal_fraction": 0.3, "subcategories": ["symbol_confusion"]},
                      generate={"allow_failures": 1})
    root = run_pipeline(cfg)
    stats = json.loads((root / "dataset/stats.json").read_text())
    assert stats["generation_failures"]["count"] == 1
    [failed] = stats["generation_failures"]["video_ids"]
    assert failed.startswith("synth-")
    assert stats["num_videos"] == 10 * 3 - 1


def test_out_of_memory_is_recorded_and_the_shard_goes_on_then_fails(tiny_config, monkeypatch):
    import torch

    def oom(img, region, rng, k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    for kind in list(artifacts._INJECT):
        monkeypatch.setitem(artifacts._INJECT, kind, oom)
    cfg = tiny_config(prompts={"num_prompts": 10, "normal_fraction": 0.3, "subcategories": ["visual_breakdown"]})
    result = _generate(cfg)
    assert result.code == 2 and "OutOfMemoryError" in result.error
    # every video was tried (the normal ones finished), not only those before the first OOM
    records = [json.loads(p.read_text()) for p in (cfg.parent / "results/videos/synth-grainy").glob("*.json")]
    assert len(records) == 3  # the 3 normal prompts
