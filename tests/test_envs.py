"""envs/*.yaml stay correct without conda: every third-party module a rule's code imports is in
that rule's environment, and every pin there matches pyproject.toml. The lock file that `make setup`
installs (requirements/lock.txt) pins every dependency of pyproject.toml within its range, with hashes."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def _requires_unconditionally(dist: str) -> set[str]:
    """Distributions that installing ``dist`` always brings (its installed metadata, no extras)."""
    try:
        requires = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    out = set()
    for line in requires:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.add(canonicalize_name(req.name))
    return out


def _module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(module: str) -> set[str]:
    """Top-level third-party modules reachable from ``module`` through our own imports, including
    the lazy ones inside functions and the backends named in registries ("pkg.mod:Class").

    A package that is only the parent of an imported module runs its imports but not its
    registries: importing ``generators.synthetic`` does not load the diffusers backend that
    ``generators.BACKENDS`` names; importing ``generators`` itself (to build a backend) does."""
    seen, todo, found = set(), [(module, True)], set()
    while todo:
        mod, explicit = todo.pop()
        if (mod, explicit) in seen or (mod, True) in seen:
            continue
        seen.add((mod, explicit))
        path = _module_file(mod)
        if path is None:
            continue
        # parents are imported too
        parts = mod.split(".")
        todo += [(".".join(parts[:i]), False) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif explicit and isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"brokenvideos(\.\w+)+:\w+", node.value):
                names = [node.value.split(":")[0]]
            for name in names:
                top = name.split(".")[0]
                if top == "brokenvideos":
                    todo.append((name, True))
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
    # a module may come with a listed distribution (threadpoolctl with scikit-learn), one level deep
    brought = {canonicalize_name(r) for r in reqs} | {d for r in reqs for d in _requires_unconditionally(r)}
    missing = sorted(n for n in needed if n not in reqs and canonicalize_name(n) not in brought)
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


def test_import_scan_skips_registries_of_mere_parents():
    # prompts imports generators.synthetic.artifacts: the generators package runs, its BACKENDS don't
    assert "diffusers" not in third_party_imports("brokenvideos.generators.synthetic.artifacts")


# --- the lock file ----------------------------------------------------------------------------------

LOCK = REPO / "requirements" / "lock.txt"
LOCKED_EXTRAS = ("diffusers", "ui", "test")  # what `make setup` installs besides the core


def _lock_pins() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) from pip-compile's output."""
    pins, name = {}, None
    for line in LOCK.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9][\w.-]*)==([^\s;\\]+)", line)
        if m:
            name = canonicalize_name(m.group(1))
            pins[name] = (m.group(2), [])
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            pins[name][1].append(digest)
    return pins


def _setup_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lock_in = [ln.strip() for ln in (REPO / "requirements" / "lock.in").read_text().splitlines()]
    reqs = project["dependencies"] + [d for e in LOCKED_EXTRAS for d in extras[e]]
    return [Requirement(r) for r in reqs + [ln for ln in lock_in if ln and not ln.startswith("#")]]


def test_lock_pins_every_dependency_within_its_range():
    pins = _lock_pins()
    for req in _setup_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{LOCK.name} lacks {req.name} (run `make lock`)"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), \
            f"{LOCK.name} pins {req.name}=={version}, outside pyproject's {req} (run `make lock`)"


def test_lock_hashes_every_pin():
    unhashed = sorted(name for name, (_, hashes) in _lock_pins().items() if not hashes)
    assert not unhashed, f"{LOCK.name}: no --hash for {unhashed}"
    # sam2 is built from its sdist in a second pip call (Makefile), so it must be in the lock too
    assert "sam2" in _lock_pins()
