"""Derive each DVC stage's code dependencies from what its Snakemake rules actually run.

Why derived: hand-listed deps drift (the `localize` stage once left out `train/` and `io/`, so a
change there left `dvc repro` thinking it was up to date). A stage runs the rules of its rule
files; each rule calls `brokenvideos <command>`; each command is a module whose transitive imports
inside the package are read from the source (AST, nothing is imported). The stage then depends on
every package directory holding such a module (a directory dep also sees new files), the top-level
modules it imports, its rule files, and the shared workflow files.

    python scripts/dvc_deps.py           # rewrite the code deps in dvc.yaml
    python scripts/dvc_deps.py --check   # exit 1 if dvc.yaml is not what this derives (a test runs it)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "brokenvideos"
# Which rule files each stage's Snakemake target runs (the one fact kept here).
STAGE_RULE_FILES = {
    "prompts": ["prompts.smk"],
    "generate": ["generate.smk"],
    "annotate": ["annotate.smk"],
    "dataset": ["dataset.smk"],
    "train": ["localize.smk"],
    "localize": ["localize.smk"],
    "tables": ["localize.smk"],
    "detect_split": ["detect.smk"],
    "detect_predictor": ["detect.smk"],
    "detect_features": ["detect.smk"],
    "detect_train": ["detect.smk"],
    "detect_evaluate": ["detect.smk"],
    "detect_tables": ["detect.smk"],
    "detect_vidaid": ["detect.smk"],
    "robustness": ["robustness.smk"],
}
SHARED = ["Snakefile", "workflow/rules/common.smk", "src/brokenvideos/__init__.py", "src/brokenvideos/__main__.py",
          "src/brokenvideos/cli.py", "src/brokenvideos/paths.py",  # common.smk builds every path with it
          # package data any step may read
          "src/brokenvideos/schemas", "src/brokenvideos/presets"]
_COMMAND = re.compile(r"\{params\.bv\}\s+([a-z][a-z0-9-]*)")


def commands_of(rule_file: Path) -> set[str]:
    return set(_COMMAND.findall(rule_file.read_text()))


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(name: str, seen: set[str] | None = None) -> set[str]:
    """``name`` and every brokenvideos module it imports, transitively (function-level imports too)."""
    seen = set() if seen is None else seen
    path = _module_file(name)
    if path is None or name in seen:
        return seen
    seen.add(name)
    parents = name.split(".")
    for i in range(2, len(parents)):  # importing a.b.c runs a/b/__init__.py first
        imported_modules(".".join(parents[:i]), seen)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                pkg = parents if path.name == "__init__.py" else parents[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + [node.module])
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("brokenvideos.") and _module_file(target):
                imported_modules(target, seen)
    return seen


def code_deps(stage: str) -> list[str]:
    from brokenvideos.cli import COMMANDS

    rule_files = [REPO / "workflow" / "rules" / f for f in STAGE_RULE_FILES[stage]]
    modules: set[str] = set()
    for command in sorted(set().union(*(commands_of(f) for f in rule_files))):
        modules |= imported_modules(COMMANDS[command][0])
    deps = set()
    for m in modules:
        parts = m.split(".")
        if len(parts) == 2 and _module_file(m).name != "__init__.py":
            deps.add(f"src/brokenvideos/{parts[1]}.py")  # top-level module: the file itself
        elif len(parts) >= 2:
            deps.add(f"src/brokenvideos/{parts[1]}")  # a subpackage: its whole directory
    deps |= {str(f.relative_to(REPO)) for f in rule_files} | set(SHARED)
    return sorted(deps)


def derived(dvc: dict) -> dict:
    unknown = sorted(set(dvc["stages"]) - set(STAGE_RULE_FILES))
    if unknown:
        sys.exit(f"error: dvc.yaml: stage(s) {unknown} not in STAGE_RULE_FILES of {__file__}: add them there")
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)  # a foreach stage: every generated stage has the same code deps
        data = [d for d in body.get("deps", []) if not d.startswith(("src/", "workflow/", "Snakefile"))]
        body["deps"] = data + code_deps(name)
    return dvc


def _deps(stage: dict):
    return stage.get("do", stage).get("deps")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if dvc.yaml differs from the derived deps")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    path = REPO / "dvc.yaml"
    text = path.read_text()
    current = yaml.safe_load(text)
    want = derived(yaml.safe_load(text))
    if args.check:
        stale = [n for n in want["stages"] if _deps(current["stages"][n]) != _deps(want["stages"][n])]
        if stale:
            print(f"dvc.yaml: code deps of {stale} are not the derived ones; run python scripts/dvc_deps.py")
            return 1
        return 0
    # Rewrite only the deps lists, keeping the file's comments and layout elsewhere.
    out, lines, i = [], text.splitlines(), 0
    stage = None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^  ([A-Za-z0-9_]+):\s*$", line)
        if m:
            stage = m.group(1)
        deps = re.match(r"^( {4}| {6})deps:$", line)
        if stage in want["stages"] and deps:
            indent = deps.group(1) + "  "
            out.append(line)
            out += [f"{indent}- {d}" for d in _deps(want["stages"][stage])]
            i += 1
            while i < len(lines) and lines[i].startswith(f"{indent}- "):
                i += 1
            continue
        out.append(line)
        i += 1
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
