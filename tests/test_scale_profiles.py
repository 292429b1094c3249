"""Cluster profiles: every rule that runs a job declares mem_mb and runtime (through one helper,
overridable from the config), and the slurm / kubernetes profiles are well-formed and name only
real rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_snakemake, write_config

RULES_DIR = REPO / "workflow" / "rules"


def rule_chunks() -> dict[str, str]:
    chunks = {}
    for f in sorted(RULES_DIR.glob("*.smk")):
        for part in re.split(r"(?m)^(?=rule \w+:)", f.read_text()):
            m = re.match(r"rule (\w+):", part)
            if m:
                chunks[m[1]] = part
    return chunks


def job_rules() -> list[str]:
    """Rules that run something (aggregate rules with only inputs submit no job)."""
    return [name for name, body in rule_chunks().items() if re.search(r"(?m)^    (shell|run|script):", body)]


def test_every_job_rule_declares_memory_and_time_through_the_helper():
    rules = job_rules()
    assert {"prompts", "generate_shard", "annotate_shard", "dataset", "train_localizer", "tables"} <= set(rules)
    for name in rules:
        block = re.search(r"(?m)^    resources:\n((?:        .*\n)+)", rule_chunks()[name])
        assert block and f'**rule_resources("{name}")' in block[1], f"rule {name}: no rule_resources() in resources"


def _dry_run_resources(workdir, *args) -> dict[str, dict[str, str]]:
    proc = run_snakemake(workdir, "-n", "--forceall", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    found = {}
    for rule, res in re.findall(r"(?m)^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", text):
        found[rule] = dict(kv.split("=", 1) for kv in res.split(", "))
    return found


def test_dry_run_jobs_carry_mem_mb_runtime_and_config_overrides(tmp_path):
    write_config(tmp_path, resources={"gpus_per_train_job": 1, "mem_mb": {"dataset": 12345},
                                      "runtime": {"train_localizer": 999}})
    found = _dry_run_resources(tmp_path)
    assert {"prompts", "generate_shard", "annotate_shard", "dataset", "train_localizer"} <= set(found)
    for rule, res in found.items():
        if rule not in job_rules():
            continue  # `all` and other aggregates run nothing
        assert int(res.get("mem_mb", 0)) > 0 and int(res.get("runtime", 0)) > 0, (rule, res)
    assert found["dataset"]["mem_mb"] == "12345"
    assert found["train_localizer"]["runtime"] == "999" and found["train_localizer"]["gpu"] == "1"
    assert found["prompts"]["mem_mb"] == "1000"  # table default where nothing is overridden


@pytest.mark.parametrize("name,executor", [("slurm", "slurm"), ("kubernetes", "kubernetes")])
def test_profiles_are_well_formed(name, executor):
    profile = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text())
    assert profile["executor"] == executor and profile["jobs"] > 0
    rules = set(rule_chunks())
    assert set(profile.get("set-resources", {})) <= rules, "set-resources names a rule that does not exist"
    text = (REPO / "profiles" / name / "config.yaml").read_text()
    for resource in ("threads", "mem_mb", "runtime", "gpu"):
        assert resource in text, f"{name} profile does not say how {resource} is mapped"


def test_slurm_plugin_turns_our_resources_into_sbatch_flags():
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")

    class Resources(dict):
        __getattr__ = dict.__getitem__

    class Job:
        resources = Resources(gpu=2, mem_mb=8000, runtime=480)

    assert utils.set_gres_string(Job()).strip() == "--gpus=2"
