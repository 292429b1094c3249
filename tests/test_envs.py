"""envs/*.yaml stay correct without conda: every third-party module a rule's code imports is in
that rule's environment, and every pin there matches pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from brokenvideos.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
# import name -> distribution name, where they differ
DISTRIBUTION = {"cv2": "opencv-python-headless", "PIL": "pillow", "yaml": "pyyaml", "skimage": "scikit-image",
                "sklearn": "scikit-learn", "pycocotools": "pycocotools", "hydra": "hydra-core", "huggingface_hub": "huggingface-hub"}
STDLIB = set(sys.stdlib_module_names)


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().lower()


def _env_requirements(env_file: Path) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    reqs = {}
    for dep in spec["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            reqs[_requirement_name(item.split("=")[0] if "=" in item and ">" not in item else item)] = item
    return reqs


def _module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(module: str) -> set[str]:
    """Top-level third-party modules reachable from ``module`` through our own imports, including
    the lazy ones inside functions and the backends named in registries ("pkg.mod:Class")."""
    seen, todo, found = set(), [module], set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = _module_file(mod)
        if path is None:
            continue
        # parents are imported too
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"brokenvideos(\.\w+)+:\w+", node.value):
                names = [node.value.split(":")[0]]
            for name in names:
                top = name.split(".")[0]
                if top == "brokenvideos":
                    todo.append(name)
                elif top not in STDLIB and top != "__future__":
                    found.add(top)
    return found


def _rules() -> list[tuple[str, str, str]]:
    """(rule name, conda env file, CLI subcommand) for every rule that runs the CLI."""
    out = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule )", text):
            m = re.match(r"rule (\w+):", block.strip())
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            cmd = re.search(r'\{params\.bv\} ([\w-]+)', block)
            if m and cmd:
                assert env, f"rule {m.group(1)} in {smk.name} runs the CLI but declares no conda env"
                out.append((m.group(1), env.group(1), cmd.group(1)))
    return out


RULES = _rules()


def test_every_rule_is_found():
    names = {r for r, _, _ in RULES}
    assert {"prompts", "generate_shard", "annotate_shard", "dataset", "train_localizer", "tables"} <= names


@pytest.mark.parametrize("rule,env,command", RULES, ids=[r[0] for r in RULES])
def test_rule_env_has_every_import(rule, env, command):
    env_file = (REPO / "workflow" / "rules" / env).resolve()
    reqs = _env_requirements(env_file)
    needed = {DISTRIBUTION.get(m, m).lower() for m in third_party_imports(COMMANDS[command][0])}
    missing = sorted(n for n in needed if n not in reqs)
    assert not missing, f"rule {rule}: {env_file.name} lacks {missing}"


def test_env_pins_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = {_requirement_name(d): d.replace(" ", "") for d in declared}
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        for name, req in _env_requirements(env_file).items():
            if name in ("python", "pip"):
                continue
            assert name in pins, f"{env_file.name}: {name} is not declared in pyproject.toml"
            assert req.replace(" ", "") == pins[name], f"{env_file.name}: {req!r} != pyproject {pins[name]!r}"


def test_import_scan_sees_lazy_backends():
    # the diffusers backend is reached only through the registry string, torch only inside functions
    assert {"diffusers", "torch"} <= third_party_imports("brokenvideos.generators.step")
    assert "ray" in third_party_imports("brokenvideos.train.step")
