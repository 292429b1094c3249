"""The README's ingest example runs as written on a fresh clone: `make example-data` writes exactly
the data/ that data.dvc records (no DVC remote needed), and the ingest command and the equivalent
config entry both ingest it."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys

import yaml
from conftest import REPO, run_cli

from brokenvideos.dataset.ingest import ingest
from brokenvideos.io.tables import read_table

SECTION = (REPO / "README.md").read_text().split("## Bringing your own data\n", 1)[1].split("\n## ", 1)[0]
BLOCK = re.search(r"```bash\n(.*?)```", SECTION, flags=re.S).group(1)
COMMANDS = [re.sub(r"\s+#.*$", "", c).strip() for c in BLOCK.replace("\\\n", " ").splitlines() if c.strip()]


def dvc_dir_md5(root) -> tuple[str, int, int]:
    """DVC's hash of a directory: md5 of the JSON list of its files' (md5, relpath), by relpath."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    entries = [{"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(root).as_posix()} for p in files]
    return hashlib.md5(json.dumps(entries).encode()).hexdigest() + ".dir", len(files), sum(p.stat().st_size for p in files)


def test_readme_ingest_example_runs_on_a_fresh_clone(tmp_path, monkeypatch):
    assert COMMANDS[:2] == ["make example-data", "source .venv/bin/activate"]
    recipe = re.search(r"^example-data:.*\n\t(.+)$", (REPO / "Makefile").read_text(), flags=re.M).group(1)
    assert recipe == "$(BIN)/python scripts/make_example_data.py"
    # the recipe, in a directory that has no data/ yet (BIN is the venv's bin, as make sets it)
    subprocess.run([sys.executable, str(REPO / "scripts/make_example_data.py")], cwd=tmp_path, check=True,
                   capture_output=True)
    recorded = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]
    assert dvc_dir_md5(tmp_path / "data") == (recorded["md5"], recorded["nfiles"], recorded["size"])

    command = shlex.split(COMMANDS[2])
    assert command[:2] == ["brokenvideos", "ingest"]
    result = run_cli(command[1:], cwd=tmp_path)
    assert result.code == 0, result.stderr
    df = read_table(tmp_path / "results/ingest/example.parquet", kind="videos")
    assert df.video_id.tolist() == ["example-clip00", "example-clip01", "example-clip02", "example-clip03"]
    labels = dict(line.split(",")[:2] for line in (tmp_path / "data/example/labels.csv").read_text().splitlines()[1:])
    assert dict(zip(df.video_id.str.removeprefix("example-"), df.label)) == labels
    assert sorted(labels.values()) == ["broken", "broken", "normal", "normal"]
    assert len(read_table(tmp_path / "results/ingest/example.rejects.parquet")) == 0

    # the README's config entry is the same ingest
    entry = yaml.safe_load(re.search(r"`(dataset: \{ingest: .*?)`", SECTION, flags=re.S).group(1))["dataset"]["ingest"][0]
    manifest = (tmp_path / "results/ingest/example.parquet").read_bytes()
    monkeypatch.chdir(tmp_path)
    ingest(entry, "results/ingest/example.parquet", "results")
    assert (tmp_path / "results/ingest/example.parquet").read_bytes() == manifest
