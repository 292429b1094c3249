"""The dataset phase through a real cluster executor (snakemake-executor-plugin-cluster-generic):
each job goes through a submit script that records the resources it was given and starts the job
as its own background process. GPU and memory requests arrive with every job."""

from __future__ import annotations

import re

import pytest

from brokenvideos.io.tables import read_table
from conftest import REPO, run_snakemake, shards_of, write_config

pytestmark = pytest.mark.slow
SUBMIT = REPO / "tests" / "fixtures" / "scale" / "submit.sh"


def test_dataset_phase_through_cluster_generic(tmp_path, monkeypatch):
    config = write_config(tmp_path, resources={"gpus_per_generate_job": 1, "gpus_per_annotate_job": 2,
                                               "mem_mb": {"dataset": 3000}})
    log = tmp_path / "submitted.log"
    monkeypatch.setenv("SCALE_SUBMIT_LOG", str(log))
    proc = run_snakemake(
        tmp_path, "dataset", "--executor", "cluster-generic", "--jobs", "4", "--latency-wait", "5",
        "--cluster-generic-submit-cmd",
        f"{SUBMIT} {{rule}} {{resources.mem_mb}} {{resources.runtime}} {{resources.gpu}} {{threads}}",
        "--default-resources", "gpu=0", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    submitted = [dict(kv.split("=") for kv in line.split()[1:]) | {"rule": line.split()[0]}
                 for line in log.read_text().splitlines()]
    by_rule: dict[str, list[dict]] = {}
    for job in submitted:
        by_rule.setdefault(job["rule"], []).append(job)
    shards = len(shards_of(config))
    # every job of the phase went through the executor, each from its own submit call
    assert {r: len(j) for r, j in by_rule.items()} == {"prompts": 1, "generate_shard": shards,
                                                       "annotate_shard": shards, "dataset": 1}
    assert len({j["pid"] for j in submitted}) == len(submitted)
    # the requests arrived: GPUs from config resources.gpus_per_*, memory/time from rule_resources()
    assert {j["gpu"] for j in by_rule["generate_shard"]} == {"1"}
    assert {j["gpu"] for j in by_rule["annotate_shard"]} == {"2"}
    assert by_rule["dataset"][0]["mem_mb"] == "3000" and by_rule["prompts"][0]["gpu"] == "0"
    assert all(int(j["mem_mb"]) > 0 and int(j["runtime"]) > 0 and int(j["threads"]) >= 1 for j in submitted)
    # and the jobs really ran: the dataset is complete
    videos = read_table(tmp_path / "results/dataset/videos.parquet", kind="videos")
    assert len(videos) == 30
    assert re.search(r"Submitted job \d+ with external jobid", proc.stdout + proc.stderr)
