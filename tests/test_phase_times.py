"""`brokenvideos phase-times`: every working rule writes a benchmark file, and the per-phase sums
and wall times are the hand-computed ones (parallel jobs counted once in wall time)."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

from conftest import REPO

from brokenvideos.cli import main
from brokenvideos.errors import BrokenVideosError
from brokenvideos.paths import ResultPaths
from brokenvideos.report.phase_times import PHASE_OF, read_jobs, summarise, union_length

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
T0 = 1_700_000_000.0


def working_rules() -> dict[str, str]:
    """rule name -> its text, for every rule that runs the CLI."""
    found = {}
    for smk in RULE_FILES:
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            m = re.match(r"rule (\w+):", block.strip())
            if m and "{params.bv}" in block:
                found[m.group(1)] = block
    return found


def test_every_working_rule_has_a_phase_and_its_own_benchmark_file():
    rules = working_rules()
    assert {"prompts", "train_localizer", "tables", "detect_train"} <= set(rules)
    assert sorted(set(rules) - set(PHASE_OF)) == [], "add the rule to brokenvideos.report.phase_times.PHASES"
    assert sorted(set(PHASE_OF) - set(rules)) == [], "PHASES names a rule that does not exist"
    for name, block in rules.items():
        m = re.search(r"benchmark:\s*\n\s*str\(P\.benchmark\(\"(\w+)\"((?:, \"\{\w+\}\")*)\)\)", block)
        assert m, f"rule {name} has no benchmark: str(P.benchmark(...))"
        assert m.group(1) == name, f"rule {name} writes the benchmark of {m.group(1)}"
        # every wildcard of the rule's outputs is in the benchmark name, so no two jobs share a file
        output = block.split("output:", 1)[1].split("benchmark:", 1)[0]
        output = "\n".join(line for line in output.splitlines() if "expand(" not in line)  # not wildcards
        wildcards = set(re.findall(r'"\{(\w+)\}"', output))
        assert wildcards <= set(re.findall(r"\{(\w+)\}", m.group(2))), name


def test_benchmark_paths():
    P = ResultPaths("out")
    assert str(P.benchmark("dataset")) == "out/benchmarks/dataset.tsv"
    assert str(P.benchmark("generate_shard", "{generator}", "{shard}")) == "out/benchmarks/generate_shard/{generator}-{shard}.tsv"


def test_union_length_counts_overlaps_once():
    assert union_length([]) == 0
    assert union_length([(0, 10), (5, 12), (20, 25), (21, 22)]) == pytest.approx(17)
    assert union_length([(3, 4), (0, 10)]) == pytest.approx(10)


def _bench(path, seconds, end):
    """A Snakemake benchmark TSV (its real header) ending at ``end``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    path.write_text(f"{header}\n{seconds:.4f}\t0:00:00\t1\t1\t1\t1\t0\t0\t50\t{seconds}\n")
    os.utime(path, (T0 + end, T0 + end))


def test_phases_sum_job_time_and_measure_wall_time(tmp_path):
    P = ResultPaths(tmp_path)
    _bench(P.benchmark("prompts"), 2, end=2)                       # data: [0, 2]
    _bench(P.benchmark("generate_shard", "g", "0"), 10, end=12)    # data: [2, 12]
    _bench(P.benchmark("generate_shard", "g", "1"), 8, end=10)     # data: [2, 10], beside shard 0
    _bench(P.benchmark("train_localizer", "a"), 100, end=112)      # localize: [12, 112]
    _bench(P.benchmark("train_localizer", "b"), 50, end=62)        # localize: [12, 62], beside a
    _bench(P.benchmark("tables"), 3, end=115)                      # localize: [112, 115]
    jobs = read_jobs(P.benchmarks_dir)
    assert sorted(jobs["job"]) == ["", "", "a", "b", "g-0", "g-1"]
    phases, rules = summarise(jobs)
    by = phases.set_index("phase")
    assert list(by.index) == ["data", "localize", "total"]
    assert by.loc["data", "job_s"] == pytest.approx(20) and by.loc["data", "wall_s"] == pytest.approx(12)
    assert by.loc["localize", "job_s"] == pytest.approx(153) and by.loc["localize", "wall_s"] == pytest.approx(103)
    assert by.loc["total", "wall_s"] == pytest.approx(115) and by.loc["total", "jobs"] == 6
    assert by.loc["localize", "longest_job"] == "train_localizer"
    assert rules[["rule", "jobs"]].values.tolist() == [["generate_shard", 2], ["prompts", 1],
                                                       ["train_localizer", 2], ["tables", 1]]


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    P = ResultPaths(tmp_path)
    _bench(P.benchmark("dataset"), 61.5, end=61.5)
    assert main(["phase-times", "--benchmarks", str(P.benchmarks_dir), "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "| data | 1 | 1 min 01.5 s | 1 min 01.5 s | dataset |" in out
    assert json.loads((tmp_path / "t.json").read_text())["phases"][0]["wall_s"] == pytest.approx(61.5)


def test_bad_benchmark_file_is_named(tmp_path, capsys):
    bad = ResultPaths(tmp_path).benchmark("dataset")
    bad.parent.mkdir(parents=True)
    bad.write_text("not\ta benchmark\n")
    with pytest.raises(BrokenVideosError, match=re.escape(str(bad))):
        read_jobs(bad.parent)
    assert main(["phase-times", "--benchmarks", str(tmp_path / "missing")]) == 2
    assert "missing: no benchmark folder" in capsys.readouterr().err
