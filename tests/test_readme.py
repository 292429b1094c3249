"""The README is true: every command it names exists, every repository path it names exists, and
every row of its "Measured" table names the command that printed the figure."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO

README = (REPO / "README.md").read_text()


def _code() -> list[str]:
    """Every inline code span and every line of a fenced block, comments dropped."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return [re.sub(r"\s+#.*$", "", s).strip() for s in lines + spans]


CODE = _code()


def _rules() -> set[str]:
    text = (REPO / "Snakefile").read_text() + "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    return set(re.findall(r"^rule (\w+):", text, flags=re.M))


def test_every_script_it_runs_exists():
    scripts = {m for c in CODE for m in re.findall(r"(?:python|bash)\s+((?:benchmarks|scripts|tests)/[\w/.-]+)", c)}
    scripts |= {m for c in CODE for m in re.findall(r"^((?:benchmarks|scripts)/[\w/.-]+\.(?:py|sh))", c)}
    assert scripts, "no script found: the parser is broken"
    assert sorted(s for s in scripts if not (REPO / s).is_file()) == []


def test_every_make_target_it_names_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.M))
    named = {m for c in CODE for m in re.findall(r"(?:^|&&\s*|time\s+)make\s+([a-z][\w-]*)", c)}
    assert {"run", "test", "setup"} <= named
    assert sorted(named - targets) == []


def test_every_cli_subcommand_it_names_exists():
    from brokenvideos.cli import COMMANDS

    named = {m for c in CODE for m in re.findall(r"^brokenvideos\s+([a-z][\w-]*)", c)}
    assert "evaluate-masks" in named
    assert sorted(named - set(COMMANDS)) == []


def test_every_snakemake_target_and_dvc_stage_it_names_exists():
    rules = _rules()
    targets = {m for c in CODE for m in re.findall(r"^snakemake\b.*?\s-j\s?\d+\s+([a-z_]+)\b(?!\.)", c)}
    targets |= {m for c in CODE for m in re.findall(r"^snakemake\s+([a-z_]+)$", c)}
    assert "detect_all" in targets
    assert sorted(targets - rules) == []
    stages = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    named = {m for c in CODE for m in re.findall(r"dvc (?:repro|status|pull)(?: --with-deps)?((?: [a-z_@0-9]+)+)", c)}
    named = {s.split("@")[0] for group in named for s in group.split()}
    assert sorted(named - stages) == []


def test_every_repository_path_it_links_or_names_exists():
    linked = set(re.findall(r"\]\(((?!https?:|#)[^)#]+)\)", README))
    named = {c for c in CODE if re.fullmatch(r"(?:src|tests|benchmarks|scripts|workflow|docs|config|profiles|envs)/[\w/.-]*\w",
                                             c)}
    missing = sorted(p for p in linked | named if not (REPO / p).exists() and "<" not in p and "*" not in p)
    assert missing == []


@pytest.mark.parametrize("row", [r for r in README.split("## Measured", 1)[1].split("\n## ", 1)[0].splitlines()
                                 if r.startswith("| ") and not r.startswith("| what") and not r.startswith("| ---")])
def test_each_measured_figure_names_its_command(row):
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 3 and re.search(r"`[^`]+`", cells[2]), f"no command beside: {row}"
