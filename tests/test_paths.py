"""ResultPaths owns the results layout: the Snakemake rules take every result path from it (no path
under the results root is spelled out in workflow/rules/*.smk), and the files a dry run plans are
exactly the ones ResultPaths names for the config's generators, shards, localizers and detectors."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from conftest import REPO, TINY_LOCALIZER, run_snakemake, train_section, write_config

from brokenvideos.config import load_config
from brokenvideos.paths import ResultPaths

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
# What a path-like literal in a rule file may be: relative to the rule file (conda envs, report
# captions), a report's file pattern, or an extension added to a ResultPaths path (P.table(...)).
NOT_RESULT_PATH = re.compile(r"\.\./.*")
REPORT_PATTERNS = {"{name}.png"}
SUFFIXED_P = re.compile(r"""f["']\{P\.[A-Za-z_]\w*\([^{}]*\)\}\.[a-z]+["']""")
PATH_LIKE = re.compile(r"/|\.(parquet|log|json|csv|png|md|tex|pt|mp4|yaml)\b")


def string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, source text) of every string literal in a rule file, f-strings whole (any Python);
    docstrings (a string alone on its statement) left out."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def source(start, end):
        return text[offsets[start[0] - 1] + start[1]:offsets[end[0] - 1] + end[1]]

    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL)]
    statement_ends = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    found, fstring_start, depth = [], None, 0
    for i, tok in enumerate(tokens):
        kind = tokenize.tok_name[tok.type]
        if kind == "FSTRING_START":  # Python >= 3.12 splits f-strings into parts
            depth += 1
            if depth == 1:
                fstring_start = tok.start
        elif kind == "FSTRING_END":
            depth -= 1
            if depth == 0:
                found.append((fstring_start[0], source(fstring_start, tok.end)))
        elif tok.type == tokenize.STRING and depth == 0:
            docstring = (i == 0 or tokens[i - 1].type in statement_ends) and tokens[i + 1].type == tokenize.NEWLINE
            if not docstring:
                found.append((tok.start[0], tok.string))
    return found


def literal_body(literal: str) -> str:
    """The text between a literal's quotes."""
    return re.fullmatch(r"""[rRbBfFuU]*('''|"{3}|'|")(.*)\1""", literal, re.S)[2]


def test_rule_files_spell_out_no_result_path():
    """No string literal in a rule file names a results path: no f"{RESULTS}/…", f"{DET}/…" or
    "results/…", and nothing path-like except the allowed kinds above."""
    offenders = []
    for path in RULE_FILES:
        for line, literal in string_literals(path):
            body = literal_body(literal)
            if "{RESULTS}" in body or "{DET}" in body or "results/" in body:
                offenders.append(f"{path.name}:{line}: {literal}")
            elif PATH_LIKE.search(body) and not (NOT_RESULT_PATH.fullmatch(body) or body in REPORT_PATTERNS
                                                 or SUFFIXED_P.fullmatch(literal)):
                offenders.append(f"{path.name}:{line}: {literal}")
    assert not offenders, "result paths belong in brokenvideos.paths.ResultPaths (use P.…):\n" + "\n".join(offenders)


def test_rule_files_build_no_path_under_the_results_root():
    """RESULTS only makes P; no rule joins a literal onto a path (except the repository's own
    workflow.basedir) or climbs above its own output's directory (.parent.parent, .parents[...])."""
    offenders = []
    for path in RULE_FILES:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL)]
        for i, tok in enumerate(tokens[:-2]):
            line, where = tok.line.strip(), f"{path.name}:{tok.start[0]}"
            after = [t.string for t in tokens[i + 1:i + 3]]
            attribute = i > 0 and tokens[i - 1].string == "."
            if tok.string == "RESULTS" and not (
                    path.name == "common.smk" and line in ('RESULTS = config["results"]', "P = ResultPaths(RESULTS)")):
                offenders.append(f"{where}: RESULTS outside P = ResultPaths(RESULTS): {line}")
            elif tok.string == "DET":
                offenders.append(f"{where}: DET: {line}")
            elif tok.type == tokenize.OP and tok.string == "/" and "workflow.basedir" not in line and \
                    tokenize.tok_name[tokens[i + 1].type] in ("STRING", "FSTRING_START"):
                offenders.append(f"{where}: path joined in a rule file: {line}")
            elif attribute and (tok.string == "parents" or (tok.string == "parent" and after == [".", "parent"])):
                offenders.append(f"{where}: climbs the results layout: {line}")
    assert not offenders, "\n".join(offenders)


def test_methods_take_wildcard_placeholders():
    P = ResultPaths("results")
    assert P.shard_manifest("{generator}", "{shard}") == Path("results/videos/{generator}/shard-{shard}.parquet")
    assert P.annotation_log("{generator}", "{shard}") == Path("results/annotations/{generator}/shard-{shard}.log")
    assert P.train_weights("{model}", "{checkpoint}") == Path("results/train/{model}/{checkpoint}/model.pt")
    assert P.predictions_table("{baseline}", "none") == Path("results/predictions/{baseline}/none/predictions.parquet")
    assert P.detect_timing("{name}") == Path("results/detect/eval/{name}/timing.json")
    # the Python steps' own paths are where the rules put them
    assert P.predictions_table("m", "final").parent == P.predictions("m", "final")
    assert P.detect_eval("d", "a", "b").parents[1] == P.detect_eval_dir("d")
    assert P.detect_sora_model_config("s").parent == P.detect_sora_model("s")
    assert P.shard_manifest("g", 3) == P.video_dir("g") / "shard-3.parquet"


def expected_files(cfg: dict) -> set[str]:
    """Every output and log the full DAG (all, detect_all, annotation_quality) writes, per ResultPaths."""
    P = ResultPaths(cfg["results"])
    shards = [(g["name"], k) for g in cfg["generators"] for k in range(g.get("shards", 1))]
    localizers = [entry["name"] for entry in cfg["train"]["localizers"]]
    baselines = cfg["evaluate"]["baselines"]
    detectors = list(cfg["detect"]["detectors"])
    sora = list(cfg["detect"]["sora"]["classifiers"])
    files = [P.prompts, P.prompts_log]
    for g, k in shards:
        files += [P.shard_manifest(g, k), P.shard_log(g, k), P.annotation_manifest(g, k), P.annotation_log(g, k)]
    for entry in cfg["dataset"].get("ingest", []):
        files += [P.ingest_manifest(entry["name"]), P.ingest_log(entry["name"])]
    files += [P.videos_table, P.splits_table, P.dataset_stats, P.dataset_figures, P.dataset_log]
    files += [P.annotation_quality_table, P.annotation_quality_figure, P.annotation_quality_log]
    for m in localizers:
        files += [P.train_weights(m, "initial"), P.train_weights(m, "final"), P.train_curves(m), P.train_metrics(m),
                  P.train_log(m)]
    for m, c in [(m, c) for m in localizers for c in ("initial", "final")] + [(b, "none") for b in baselines]:
        files += [P.predictions_table(m, c), P.predict_log(m, c), P.per_video_metrics(m, c), P.metrics_summary(m, c),
                  P.evaluate_log(m, c)]
    files += [f"{P.table('table2')}.{ext}" for ext in ("md", "csv", "json", "tex")]
    files += [f"{P.table('jf_by_category')}.md", f"{P.table('jf_by_generator')}.md", f"{P.table('frames')}.md",
              f"{P.table('frames_by_category')}.md",
              P.table_figure("training_curves"), P.table_figure("overlays"), P.tables_log]
    files += [P.detect_splits, P.detect_split_log, P.detect_predictor_weights, P.detect_predictor_metrics,
              P.detect_predictor_log, P.feature_index("efficientnet_lite0"), P.feature_index_meta("efficientnet_lite0"),
              P.feature_log("efficientnet_lite0"),
              P.detect_errors, P.detect_errors_meta, P.detect_errors_log, P.detect_train_summary, P.detect_train_log]
    for name in detectors:
        files += [P.detect_model_metrics(name), P.detect_timing(name), P.detect_eval_log(name)]
    for name in sora:
        files += [P.detect_sora_model_config(name), P.detect_sora_metrics(name), P.detect_sora_log(name)]
    files += [f"{P.detect_table(stem)}.{ext}" for stem in ("detect_table1", "detect_table3", "sora_labels")
              for ext in ("md", "csv", "tex")]
    files.append(P.detect_tables_log)
    files += [P.detect_vidaid_metrics, P.detect_vidaid_log]
    for ol in cfg["robustness"]["operations"]:
        files += [P.degraded_videos_table(ol), P.robustness_detect_done(ol), P.robustness_localize_done(ol)]
        files += [P.degraded_log(ol, step) for step in ("degrade", "detect", "localize")]
    files += [f"{P.robustness_table(stem)}.md" for stem in ("detect_table2", "localize_robustness")]
    files += [P.robustness_metrics, P.robustness_figure, P.robustness_tables_log]
    return {str(f) for f in files}


def planned_files(dry_run_output: str) -> set[str]:
    """The `output:` and `log:` files of every job a dry run lists."""
    found = set()
    for line in re.findall(r"(?m)^    (?:output|log): (.*)$", dry_run_output):
        found |= {f.strip() for f in line.split(", ")}
    return found


def test_dry_run_writes_exactly_what_result_paths_names(tmp_path):
    (tmp_path / "data" / "myset").mkdir(parents=True)
    config = write_config(tmp_path, results="out/run-1",
                          train=train_section({**TINY_LOCALIZER, "name": "second"}),
                          dataset={"ingest": [{"name": "myset", "root": "data/myset"}]})
    proc = run_snakemake(tmp_path, "-n", "--forceall", "all", "detect_all", "annotation_quality")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load_config(config)  # validated, with the schema's defaults (as the Snakefile's validate)
    assert [e["name"] for e in cfg["train"]["localizers"]] == ["st_unet", "second"]
    assert cfg["evaluate"]["baselines"] and cfg["detect"]["detectors"] and cfg["detect"]["sora"]["classifiers"]
    planned = planned_files(proc.stdout + proc.stderr)
    expected = expected_files(cfg)
    assert planned == expected, (f"planned, not in ResultPaths: {sorted(planned - expected)}\n"
                                 f"in ResultPaths, not planned: {sorted(expected - planned)}")
    # the effective config the jobs read is under the same root
    (effective,) = (tmp_path / "out/run-1/.config").glob("config-*.json")
    assert effective.parent == tmp_path / ResultPaths("out/run-1").config_dir
