"""Training's private Ray cluster: it listens on loopback only, its log is clean text, and a Ray
worker killed by SIGKILL mid-training is survived through FailureConfig.

One tiny training (subprocess, as the Snakemake rule runs it) serves all three: while it runs the
test lists the listening TCP sockets of the whole process tree (driver, GCS, raylet, workers), and
once two checkpoints exist it SIGKILLs one RayTrainWorker.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_pipeline, tiny_overrides, train_section, write_config
from fixtures.scale.procs import cli_cmd, cli_env, is_loopback, listening, ray_workers, registered_checkpoints, tree

pytestmark = pytest.mark.slow

EPOCHS = 16  # room after the first registered checkpoint: the kill must land while training still runs


@pytest.fixture(scope="module")
def killed_training(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ray_private")
    train = train_section(overrides=tiny_overrides(epochs=EPOCHS), max_failures=1)
    config = write_config(workdir, train=train)
    run_pipeline(config)
    out = workdir / "results/train/st_unet"
    log = workdir / "train.log"
    sockets, killed = set(), None
    with log.open("w") as fh:
        proc = subprocess.Popen(cli_cmd("train", "--config", config, "--out-dir", out), cwd=workdir,
                                env=cli_env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 400
            while proc.poll() is None and time.monotonic() < deadline:
                pids = {p.pid for p in tree(proc.pid)}
                sockets |= listening(pids)
                pids = {p.pid for p in tree(proc.pid)}
                # a checkpoint registered with Ray Train's controller (its snapshot names it), not only
                # uploaded: a report still queued when its worker dies is lost, and epochs here are short
                if killed is None and registered_checkpoints(out) >= 1:
                    workers = ray_workers(pids)
                    if workers:
                        killed = workers[-1].pid
                        workers[-1].send_signal(signal.SIGKILL)
                time.sleep(0.2)
            code = proc.wait(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {"code": code, "sockets": sockets, "killed": killed, "log": log.read_text(errors="replace"), "out": out}


def test_private_cluster_listens_on_loopback_only(killed_training):
    assert killed_training["code"] == 0, killed_training["log"][-3000:]
    sockets = {(Path(name).name, ip, port) for name, ip, port in killed_training["sockets"]}
    names = {name for name, _, _ in sockets}
    # GCS, the raylet (node manager + object manager) and the workers were seen listening ...
    assert {"gcs_server", "raylet"} <= names, sockets
    assert "ray::RayTrainWorker" in names, sockets
    exposed = sorted(s for s in sockets if not is_loopback(s[1]))
    # ... and nothing of the job is reachable from another host: not Ray's servers, not gloo's
    # sockets (GLOO_SOCKET_IFNAME=lo), not torch's rendezvous store (brokenvideos.train.loopback)
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_training_log_is_clean_text(killed_training):
    log = killed_training["log"]
    assert "(TrainController pid=" in log  # worker output does reach the log ...
    assert "\x1b[" not in log  # ... without ANSI colour codes
    assert "Failed to query Ray Train Controller actor state" not in log


def test_sigkilled_worker_is_survived_through_failure_config(killed_training):
    assert killed_training["killed"] is not None, "no RayTrainWorker was caught after a registered checkpoint"
    assert killed_training["code"] == 0, killed_training["log"][-3000:]
    out = killed_training["out"]
    curves = pd.read_csv(out / "metrics.csv")
    assert curves.epoch.tolist() == list(range(EPOCHS))
    # the restarted worker group resumed from a checkpoint instead of starting over
    restarts = sorted(set(curves.started_at_epoch) - {0})
    assert restarts and restarts[0] >= 1, curves.started_at_epoch.tolist()
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["epochs"] == EPOCHS
    assert (out / "final" / "model.pt").is_file()
    assert yaml.safe_load((out.parents[2] / "config.yaml").read_text())["train"]["max_failures"] == 1
