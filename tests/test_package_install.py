"""A non-editable install works outside the checkout: the schemas and presets are package data
found by name, nothing is read from the repository's folders."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import REPO, TINY_CONFIG, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding the wheel built from this tree; third-party packages come from the
    project venv through a path entry (nothing is downloaded, and the project's own editable
    install is not on that path: its finder is a .pth hook that only the project venv runs)."""
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(REPO)], check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("brokenvideos-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (tmp / "venv").joinpath(purelib, "project-deps.pth").write_text(deps + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True)
    return venv


def _run(venv, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / args[0]), *map(str, args[1:])], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    where = _run(installed, "python", "-c", "import brokenvideos, sys; print(brokenvideos.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout


def test_help_and_a_one_shard_generate_from_the_installed_package(installed, tmp_path):
    helped = _run(installed, "brokenvideos", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "generate" in helped.stdout, helped.stderr
    cfg = write_config(tmp_path, prompts={**TINY_CONFIG["prompts"], "num_prompts": 4},
                       generators=[{"name": "synth-grainy", "backend": "synthetic", "family": "grainy"}])
    prompts = _run(installed, "brokenvideos", "prompts", "--config", cfg, cwd=tmp_path)
    assert prompts.returncode == 0, prompts.stderr
    gen = _run(installed, "brokenvideos", "generate", "--config", cfg, "--generator", "synth-grainy", "--shard", 0,
               cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert len(list((tmp_path / "results/videos/synth-grainy").glob("*.mp4"))) == 4
    # a bad config is still caught by the packaged schema, with its key path
    bad = write_config(tmp_path / "bad", video={**TINY_CONFIG["video"], "width": 65})
    refused = _run(installed, "brokenvideos", "prompts", "--config", bad, cwd=tmp_path / "bad")
    assert refused.returncode == 2 and "video.width" in refused.stderr
