"""Where a run's time went: Snakemake's per-job `benchmark:` files summed per phase and per rule.

Every rule writes ``ResultPaths.benchmark(rule, wildcards…)`` (a TSV whose ``s`` column is the
job's wall time). A job's interval is [end − s, end], its end being the file's modification time;
a phase's wall time is the length of the union of its jobs' intervals, so jobs that ran side by
side (``-j2``) are not counted twice, and "job time" is their plain sum. A job that did not run
again keeps the benchmark of its last run: after a partial re-run the table mixes runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import write_json
from brokenvideos.paths import ResultPaths

# The phase of every rule that does work (tests/test_phase_times.py checks that each one is here).
PHASES: dict[str, tuple[str, ...]] = {
    "data": ("prompts", "generate_shard", "annotate_shard", "ingest", "dataset"),
    "annotation quality": ("annotation_quality",),
    "localize": ("train_localizer", "predict_localizer", "predict_baseline", "evaluate_predictions", "import_predictions",
                 "tables"),
    "detect": ("detect_split", "detect_predictor", "detect_backbone_features", "detect_prediction_errors",
               "detect_train", "detect_evaluate", "detect_sora", "detect_tables", "detect_vidaid"),
    "robustness": ("degrade_videos", "detect_robustness", "localize_robustness", "robustness_tables"),
}
PHASE_OF = {rule: phase for phase, rules in PHASES.items() for rule in rules}


def read_jobs(benchmarks_dir: Path) -> pd.DataFrame:
    """One row per benchmark file: rule, job (wildcards), phase, seconds, start, end."""
    rows = []
    for path in sorted(Path(benchmarks_dir).rglob("*.tsv")):
        rel = path.relative_to(benchmarks_dir)
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        try:
            table = pd.read_csv(path, sep="\t")
            seconds = float(table["s"].iloc[-1])
        except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
            raise BrokenVideosError(f"{path}: not a Snakemake benchmark file ({exc})") from None
        end = path.stat().st_mtime
        rows.append({"rule": rule, "job": rel.stem if len(rel.parts) > 1 else "", "phase": PHASE_OF.get(rule, "other"),
                     "seconds": seconds, "start": end - seconds, "end": end})
    return pd.DataFrame(rows, columns=["rule", "job", "phase", "seconds", "start", "end"])


def union_length(intervals) -> float:
    """Total length covered by [start, end] intervals (overlaps counted once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def summarise(jobs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per phase, per rule) tables, phases in pipeline order, then a total row."""
    order = [*PHASES, "other"]

    def row(name, part):
        return {"phase": name, "jobs": len(part), "wall_s": union_length(zip(part["start"], part["end"])),
                "job_s": part["seconds"].sum(), "longest_job": part.loc[part["seconds"].idxmax(), "rule"]}

    parts = [(phase, jobs[jobs["phase"] == phase]) for phase in order] + [("total", jobs)]
    phases = [row(name, part) for name, part in parts if len(part)]
    rules = (jobs.groupby(["phase", "rule"], sort=False)["seconds"].agg(jobs="size", job_s="sum", max_job_s="max")
             .reset_index())
    rules["phase"] = pd.Categorical(rules["phase"], order)
    rules = rules.sort_values(["phase", "job_s"], ascending=[True, False]).reset_index(drop=True)
    rules["phase"] = rules["phase"].astype(str)
    return pd.DataFrame(phases, columns=["phase", "jobs", "wall_s", "job_s", "longest_job"]), rules


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def render(phases: pd.DataFrame, rules: pd.DataFrame) -> str:
    lines = ["| Phase | Jobs | Wall time | Job time (sum) | Longest job |", "|---|---|---|---|---|"]
    for r in phases.itertuples():
        lines.append(f"| {r.phase} | {r.jobs} | {_minutes(r.wall_s)} | {_minutes(r.job_s)} | {r.longest_job} |")
    lines += ["", "| Phase | Rule | Jobs | Job time (sum) | Longest job |", "|---|---|---|---|---|"]
    for r in rules.itertuples():
        lines.append(f"| {r.phase} | {r.rule} | {r.jobs} | {_minutes(r.job_s)} | {_minutes(r.max_job_s)} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the run's config: its results root holds benchmarks/")
    where.add_argument("--benchmarks", type=Path, help="a benchmark folder")
    parser.add_argument("--json", type=Path, default=None, help="also write both tables as JSON here")


def run(args) -> int:
    folder = args.benchmarks or ResultPaths(load_config(args.config)["results"]).benchmarks_dir
    if not folder.is_dir():
        raise BrokenVideosError(f"{folder}: no benchmark folder (run the workflow with Snakemake first)")
    jobs = read_jobs(folder)
    if jobs.empty:
        raise BrokenVideosError(f"{folder}: no benchmark files")
    phases, rules = summarise(jobs)
    print(f"Time per phase (Snakemake benchmarks in {folder}; wall time counts side-by-side jobs once)\n")
    print(render(phases, rules), end="")
    if args.json:
        write_json(args.json, {"phases": phases.to_dict("records"), "rules": rules.to_dict("records")})
    return 0
