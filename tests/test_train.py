"""Training through Ray Train: recipes, schedules, the sampler, and end-to-end runs with 2 CPU
workers — plain, with a failure injected mid-run (FailureConfig), and interrupted then re-run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from brokenvideos.config import load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.models.st_unet import SpatioTemporalUNet
from brokenvideos.train.loop import epoch_order
from brokenvideos.train.recipes import RECIPES, lr_factor, resolve_recipe
from conftest import run_cli, run_pipeline, train_section

TINY_TRAIN = train_section()


def test_paper_recipes_are_the_papers():
    # BrokenVideos 4.2
    samwise = resolve_recipe({"recipe": "samwise"}, num_workers=8)
    assert (samwise["epochs"], samwise["lr"], samwise["weight_decay"], samwise["schedule"]) == (8, 1e-5, 0.0, "constant")
    assert samwise["batch_size"] * 8 == 16  # global batch 16 over 8 GPUs
    glus = resolve_recipe({"recipe": "glus"}, num_workers=8)
    assert (glus["max_steps"], glus["lr"], glus["warmup_steps"], glus["batch_size"], glus["grad_accum"]) == \
        (3000, 3e-4, 100, 5, 2)
    lisa = resolve_recipe({"recipe": "videolisa"}, num_workers=8)
    assert (lisa["max_steps"], lisa["lr"], lisa["weight_decay"], lisa["warmup_steps"], lisa["schedule"]) == \
        (2000, 3e-4, 0.0, 100, "warmup_decay")


def test_recipe_errors_name_the_key():
    with pytest.raises(BrokenVideosError, match="train.recipe: unknown recipe 'adam'"):
        resolve_recipe({"recipe": "adam"}, 2)
    with pytest.raises(BrokenVideosError, match="global batch 16 is not divisible by 3 workers"):
        resolve_recipe({"recipe": "samwise"}, 3)


def test_warmup_decay_schedule():
    r = RECIPES["glus"]
    assert lr_factor(0, 3000, r) == pytest.approx(1 / 100)
    assert lr_factor(99, 3000, r) == pytest.approx(1.0)
    assert lr_factor(1550, 3000, r) == pytest.approx(0.5, abs=1e-3)
    assert lr_factor(3000, 3000, r) == 0.0
    assert lr_factor(5, 8, RECIPES["samwise"]) == 1.0


def test_overriding_the_budget_replaces_the_recipes():
    assert "max_steps" not in resolve_recipe({"recipe": "cpu_default", "overrides": {"epochs": 3}}, 2)
    assert "epochs" not in resolve_recipe({"recipe": "samwise", "overrides": {"max_steps": 10}}, 2)
    with pytest.raises(BrokenVideosError, match="exactly one of epochs and max_steps"):
        resolve_recipe({"recipe": {"lr": 1e-3, "schedule": "constant"}}, 2)


@pytest.mark.parametrize("patch", [1, 2, 4])
def test_space_to_depth_keeps_every_pixel(patch):
    """Any frame size in, logits of the same size out, and the fold is lossless: swapping two pixels
    of one p×p cell changes their logits. (A pooled, blurred stem could not tell them apart.)"""
    torch.manual_seed(0)
    model = SpatioTemporalUNet(4, 2, patch_size=patch).eval()
    clip = torch.rand(1, 3, 3, 37, 50)
    swapped = clip.clone()
    swapped[0, 1, :, 20, 28], swapped[0, 1, :, 21, 29] = clip[0, 1, :, 21, 29], clip[0, 1, :, 20, 28]
    with torch.no_grad():
        out, out_swapped = model(clip), model(swapped)
    assert out.shape == (1, 3, 37, 50)
    assert not torch.allclose(out[0, 1, 20, 28], out_swapped[0, 1, 20, 28])
    assert not torch.allclose(out[0, 1, 21, 29], out_swapped[0, 1, 21, 29])


def test_global_context_sees_the_whole_clip():
    """Without global context frame 0 sees ±1 frame per block; with it, a change in the last frame
    reaches frame 0 through the clip mean. Both survive save_pretrained/from_pretrained."""
    torch.manual_seed(0)
    clip = torch.rand(1, 12, 3, 16, 16)
    far = clip.clone()
    far[0, -1] = 1 - far[0, -1]
    for global_context, reaches in ((False, False), (True, True)):
        model = SpatioTemporalUNet(4, 1, global_context=global_context).eval()
        with torch.no_grad():
            changed = not torch.allclose(model(clip)[0, 0], model(far)[0, 0])
        assert changed is reaches


def test_model_config_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SpatioTemporalUNet(4, 2, patch_size=2, global_context=True).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = SpatioTemporalUNet.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    clip = torch.rand(1, 4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(clip), model(clip))
    # weights saved before these options existed load as what they were: no patch, no global context
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    old = SpatioTemporalUNet(4, 2)
    old.save_pretrained(tmp_path / "old")
    (tmp_path / "old" / "config.json").write_text(json.dumps({k: cfg[k] for k in ("arch", "base_channels", "depth")}))
    assert SpatioTemporalUNet.from_pretrained(tmp_path / "old").config["patch_size"] == 1


@pytest.mark.parametrize("n,world", [(153, 2), (10, 3), (8, 8), (5, 8)])
def test_every_worker_runs_the_same_number_of_clips(n, world):
    orders = [epoch_order(n, seed=0, epoch=3, rank=r, world=world) for r in range(world)]
    assert len({len(o) for o in orders}) == 1  # unequal counts deadlock DDP's last all-reduce
    assert set(np.concatenate(orders)) == set(range(n))
    assert np.array_equal(orders[0], epoch_order(n, seed=0, epoch=3, rank=0, world=world))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from conftest import write_config

    workdir = tmp_path_factory.mktemp("train")
    config = write_config(workdir, train=TINY_TRAIN)
    run_pipeline(config)
    return workdir


def _train(workdir, out, **train_overrides):
    import yaml

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["train"] = train_section(**train_overrides)
    path = workdir / f"config-{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return run_cli(["train", "--config", path, "--out-dir", f"results/train/{out}"], cwd=workdir)


@pytest.mark.slow
def test_ray_training_two_workers_end_to_end(tiny_dataset):
    result = _train(tiny_dataset, "plain")
    assert result.code == 0, result.stderr[-3000:]
    out = tiny_dataset / "results" / "train" / "plain"
    curves = pd.read_csv(out / "metrics.csv")
    assert curves.epoch.tolist() == [0, 1, 2] and (curves.started_at_epoch == 0).all()
    assert (curves.clips_per_s > 0).all() and np.isfinite(curves.loss).all()
    initial = SpatioTemporalUNet.from_pretrained(out / "initial")
    final = SpatioTemporalUNet.from_pretrained(out / "final")
    changed = [not torch.equal(a, b) for a, b in zip(initial.state_dict().values(), final.state_dict().values())]
    assert any(changed), "training changed no weight"
    # weights load under weights_only=True (no pickled code)
    torch.load(out / "final" / "model.pt", weights_only=True)
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["epochs"] == 3 and meta["num_train_videos"] > 0
    # the windows prediction and calibration use are the config's, saved beside the weights
    from brokenvideos.models import load_inference_settings

    for d in ("initial", "final"):
        assert load_inference_settings(out / d) == {"clip_len": 4, "crop": [32, 32]}

    # Running the finished training again (snakemake --forcerun) trains again instead of resuming
    # at its last epoch: same seed, same curves.
    before = {p.name for p in (out / "ray").glob("run-*/checkpoint_2*")}
    again = _train(tiny_dataset, "plain")
    assert again.code == 0, again.stderr[-3000:]
    after = {p.name for p in (out / "ray").glob("run-*/checkpoint_2*")}
    assert after and not (before & after), "the finished run was resumed instead of retrained"
    assert pd.read_csv(out / "metrics.csv").loss.tolist() == pytest.approx(curves.loss.tolist(), rel=1e-4)


@pytest.mark.slow
def test_failure_mid_run_resumes_from_last_checkpoint(tiny_dataset):
    # FailureConfig(max_failures=1): the worker group dies at epoch 2 once and is restarted by Ray
    result = _train(tiny_dataset, "failover", inject_failure_at_epoch=2, max_failures=1)
    assert result.code == 0, result.stderr[-3000:]
    out = tiny_dataset / "results" / "train" / "failover"
    assert list((out / "ray").glob("run-*/injected-failure.done")), "the failure was not injected"
    curves = pd.read_csv(out / "metrics.csv")
    assert curves.epoch.tolist() == [0, 1, 2]
    # epochs 0-1 restored from the checkpoint, not redone: the restarted group began at epoch 2
    assert curves.started_at_epoch.tolist() == [0, 0, 2]


@pytest.mark.slow
def test_rerun_of_an_interrupted_rule_resumes(tiny_dataset):
    # No retries: the run stops at epoch 1 with checkpoints of epoch 0 on disk ...
    first = _train(tiny_dataset, "rerun", inject_failure_at_epoch=1, max_failures=0)
    assert first.code == 2 and "training failed" in first.error
    out = tiny_dataset / "results" / "train" / "rerun"
    assert not (out / "final").exists()
    ckpts = sorted((out / "ray").glob("run-*/checkpoint_*/history.json"))
    epoch0 = json.loads(ckpts[-1].read_text())[0]
    # ... and the same command again continues from epoch 1 instead of starting over.
    second = _train(tiny_dataset, "rerun", inject_failure_at_epoch=1, max_failures=0)
    assert second.code == 0, second.stderr[-3000:]
    curves = pd.read_csv(out / "metrics.csv")
    assert curves.epoch.tolist() == [0, 1, 2]
    assert curves.started_at_epoch.tolist() == [0, 1, 1]  # the re-run began after epoch 0
    assert curves.loss[0] == pytest.approx(epoch0["loss"], rel=1e-12)


def test_train_rejects_an_empty_train_split(tiny_dataset, tmp_path):
    splits = tiny_dataset / "results" / "dataset" / "splits.parquet"
    empty = tmp_path / "splits.parquet"
    from brokenvideos.io.tables import read_table, write_table

    df = read_table(splits)
    write_table(df.assign(split="val"), empty, kind="splits")
    result = run_cli(["train", "--config", tiny_dataset / "config.yaml", "--out-dir", tmp_path / "t",
                      "--splits", empty], cwd=tiny_dataset)
    assert result.code == 2 and "no broken or normal videos in the train split" in result.error


def test_config_has_train_defaults():
    cfg = load_config("config.yaml")
    assert cfg["train"]["ray"]["num_workers"] == 2 and cfg["train"]["ray"]["use_gpu"] is False
