"""DVC runs the real stages of dvc.yaml on a tiny config: a second `dvc repro` does nothing,
`dvc status` is clean, a changed parameter re-runs only the stages that depend on it, and
experiments (`dvc exp run -S`, `exp show`, `metrics diff`, `plots diff`) work on the declared
metrics and curves."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from conftest import TINY_CONFIG, tiny_overrides, train_section
from fixtures.scale.dvc_repo import dvc, make_project, ran_stages

pytestmark = pytest.mark.slow

DATA_PHASE = ["prompts", "generate", "annotate", "dataset"]
TINY = {**copy.deepcopy(TINY_CONFIG),
        "train": train_section(overrides=tiny_overrides(epochs=2)),
        "evaluate": {"split": "val", "protocol": "mevis", "normal_target": "empty",
                     "baselines": ["temporal_residual", "empty"]}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("dvc") / "project", TINY, tmp_path_factory.mktemp("remote"))
    first = dvc(root, "repro", "train")
    return {"root": root, "first": first.stdout}


def test_repro_runs_each_stage_once_then_nothing(project):
    root = project["root"]
    assert ran_stages(project["first"]) == [*DATA_PHASE, "train@0"]  # one stage per localizer
    again = dvc(root, "repro", "train")
    assert ran_stages(again.stdout) == [], again.stdout
    assert "Data and pipelines are up to date" in again.stdout
    status = dvc(root, "status", "--with-deps", "train")
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(lock) == {*DATA_PHASE, "train@0"}


@pytest.fixture
def moto_s3(monkeypatch):
    """An S3 endpoint on 127.0.0.1 (moto), with one bucket; DVC reaches it through dvc-s3."""
    import boto3
    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)  # inherited by the dvc subprocesses
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="brokenvideos")
        yield endpoint
    finally:
        server.stop()


def test_s3_remote_push_then_fresh_clone_pulls_and_runs_nothing(project, moto_s3, tmp_path):
    import boto3

    from fixtures.scale.dvc_repo import git

    root = project["root"]
    dvc(root, "remote", "add", "-d", "s3", "s3://brokenvideos/dvc-store")
    dvc(root, "remote", "modify", "s3", "endpointurl", moto_s3)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "results of the tiny run, S3 remote")
    push = dvc(root, "push")
    stored = boto3.client("s3", endpoint_url=moto_s3).list_objects_v2(Bucket="brokenvideos")
    assert stored.get("KeyCount", 0) > 0, push.stdout

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    assert not (clone / "results").exists()
    dvc(clone, "pull", "--with-deps", "train")  # stages never run here have nothing to pull
    status = dvc(clone, "status", "--with-deps", "train")
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    repro = dvc(clone, "repro", "train")
    assert ran_stages(repro.stdout) == [], repro.stdout
    for rel in ["results/dataset/videos.parquet", "results/dataset/stats.json", "results/train/st_unet/metrics.json",
                "results/train/st_unet/final/model.pt"]:
        assert (clone / rel).read_bytes() == (root / rel).read_bytes(), rel


def test_experiment_with_one_parameter_changed(project):
    root = project["root"]
    from fixtures.scale.dvc_repo import git

    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "baseline")
    # one training parameter: only `train` re-runs, the data phase is reused as it is
    exp = dvc(root, "exp", "run", "-n", "three-epochs", "-S", "config.yaml:train.localizers.0.overrides.epochs=3", "train")
    assert ran_stages(exp.stdout) == ["train@0"], exp.stdout
    for stage in DATA_PHASE:
        assert f"Stage '{stage}' didn't change, skipping" in exp.stdout

    shown = json.loads(dvc(root, "exp", "show", "--json").stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    names = {e["name"]: e for e in exps}
    assert "three-epochs" in names, shown
    run = names["three-epochs"]["revs"][0]["data"]
    assert run["params"]["config.yaml"]["data"]["train"]["localizers"][0]["overrides"]["epochs"] == 3
    metrics = run["metrics"]["results/train/st_unet/metrics.json"]["data"]
    assert metrics["epochs"] == 3 and "loss" in metrics["final"]
    assert "results/dataset/stats.json" in run["metrics"]

    diff = json.loads(dvc(root, "metrics", "diff", "HEAD", "three-epochs", "--json").stdout)
    epochs = diff["results/train/st_unet/metrics.json"]["epochs"]
    assert (epochs["old"], epochs["new"], epochs["diff"]) == (2, 3, 1)
    assert "results/dataset/stats.json" not in diff  # the dataset did not change

    plots = json.loads(dvc(root, "plots", "diff", "HEAD", "three-epochs", "--json").stdout)
    (curve,) = plots["data"]["results/train/st_unet/metrics.csv"]
    assert curve["revisions"] == ["HEAD", "three-epochs"]
    points = curve["content"]["data"]["values"]
    # one point per epoch of each revision: 2 epochs at HEAD, 3 in the experiment
    assert sorted((p["rev"], int(p["epoch"])) for p in points) == \
        [("HEAD", 0), ("HEAD", 1), ("three-epochs", 0), ("three-epochs", 1), ("three-epochs", 2)]


def test_changed_parameter_reruns_only_what_depends_on_it(project):
    root = project["root"]
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["dataset"]["split"] = {"by": "ratios", "train": 0.5, "val": 0.3, "test": 0.2}
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    status = dvc(root, "status", "--with-deps", "train").stdout
    assert "dataset:" in status and "changed deps" in status
    for stage in ["prompts", "generate", "annotate"]:
        assert f"{stage}:" not in status, status
    rerun = dvc(root, "repro", "dataset")
    assert ran_stages(rerun.stdout) == ["dataset"], rerun.stdout
    # `train` now sees a new split: it is outdated, the stages before `dataset` are not
    after = dvc(root, "status", "--with-deps", "train").stdout
    assert "train@0:" in after and "dataset:" not in after, after
