"""Training joins an existing Ray cluster by `train.ray.address`: the test starts a head
(`ray start --head` on this host, no CPUs of its own) and a second node (`ray start --address`,
2 CPUs and a custom resource), trains, and sees both Ray Train workers run on the second node.
The cluster is stopped afterwards, by the pids of its own processes (never `ray stop`, which
would stop every Ray cluster on the machine)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from conftest import TINY_RUN, run_pipeline, tiny_overrides, train_section, write_config
from fixtures.scale.procs import PYTHON, cli_cmd, cli_env, ray_workers, run, tree

pytestmark = pytest.mark.slow
RAY = str(Path(PYTHON).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_processes(temp_dir: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in a for a in p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            pass
    return found


def _raylets(temp_dir: str) -> list[psutil.Process]:
    return [p for p in _cluster_processes(temp_dir) if Path((p.cmdline() or [""])[0]).name == "raylet"]


@pytest.fixture
def two_node_cluster():
    # A short temp dir: Ray's unix sockets live under it (108-byte path limit).
    temp_dir = tempfile.mkdtemp(prefix="/tmp/rc")
    port = _free_port()
    # On Linux `ray start` turns 127.0.0.1 into the host's address, and a loopback-only head (as
    # train/step.py starts its private cluster) refuses other nodes: the head runs on the host IP.
    # Token auth must be on explicitly for `ray start --address` to send the token (~/.ray/auth_token).
    env = cli_env(RAY_AUTH_MODE="token")
    try:
        head = run([RAY, "start", "--head", f"--port={port}", "--num-cpus=0",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
                   env=env, timeout=120)
        assert head.returncode == 0, head.stdout + head.stderr
        head_raylets = {p.pid for p in _raylets(temp_dir)}
        ip = re.search(r"Local node IP: (\S+)", head.stdout + head.stderr)[1]
        address = f"{ip}:{port}"
        node = run([RAY, "start", f"--address={address}", "--num-cpus=2", '--resources={"scale_node": 2}',
                    "--disable-usage-stats"], env=env, timeout=120)
        assert node.returncode == 0, node.stdout + node.stderr
        deadline = time.monotonic() + 30
        while len(_raylets(temp_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        second = [p for p in _raylets(temp_dir) if p.pid not in head_raylets]
        assert len(head_raylets) == 1 and len(second) == 1, "the second node did not come up"
        yield {"address": address, "head_raylet": head_raylets.pop(), "node_raylet": second[0].pid,
               "temp_dir": temp_dir}
    finally:
        procs = _cluster_processes(temp_dir)
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=15)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass


def test_training_places_both_workers_on_the_existing_cluster(two_node_cluster, tmp_path):
    cluster = two_node_cluster
    train = train_section(overrides=tiny_overrides(epochs=2), ray={**TINY_RUN["ray"], "address": cluster["address"]})
    config = write_config(tmp_path, train=train)
    run_pipeline(config)
    seen: dict[str, set[int]] = {"node": set(), "head": set()}
    with (tmp_path / "train.log").open("w") as fh:
        proc = subprocess.Popen(cli_cmd("train", "--config", config, "--out-dir", "results/train/st_unet"),
                                cwd=tmp_path, env=cli_env(RAY_AUTH_MODE="token"), stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 400
        while proc.poll() is None and time.monotonic() < deadline:
            for key, raylet in (("node", cluster["node_raylet"]), ("head", cluster["head_raylet"])):
                seen[key] |= {p.pid for p in ray_workers({q.pid for q in tree(raylet)})}
            time.sleep(0.3)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
    log = (tmp_path / "train.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    # (the driver may print a worker-group line twice: Ray forwards it from two log streams)
    started = {int(pid) for pid in re.findall(r"- \(ip=[^,]+, pid=(\d+)\) world_rank=\d", log)}
    assert len(started) == 2, log[-3000:]
    assert set(started) <= seen["node"], (started, seen)  # both workers ran on the second node
    assert not seen["head"]
    meta = json.loads((tmp_path / "results/train/st_unet/metrics.json").read_text())
    assert meta["epochs"] == 2
