"""dataset.ingest[] in the config: the schema's format enum is the adapter registry, every option an
adapter reads is in the schema, and the Snakemake rule passes an entry's format and options to the
CLI as flags that parse back to the same entry."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, SNAKEFILE, SNAKEMAKE, TINY_CONFIG, write_config

from brokenvideos.config import validate_config
from brokenvideos.dataset import ingest as ingest_step
from brokenvideos.dataset.adapters import ADAPTERS, adapter_class, cli_flags
from brokenvideos.dataset.adapters.base import COMMON_OPTIONS
from brokenvideos.errors import BrokenVideosError

SCHEMA = yaml.safe_load((REPO / "src/brokenvideos/schemas/config.schema.yaml").read_text())
ENTRY = SCHEMA["properties"]["dataset"]["properties"]["ingest"]["items"]

DAVIS = {"name": "dv", "root": "data/davis", "format": "davis", "resolution": "480p", "fps": 12.5,
         "encode": True, "on_error": "skip", "generator": "a b"}
BV = {"name": "bv", "root": "data/bv", "format": "brokenvideos", "masks_dir": "data/bv masks",
      "generators": {"Cog5B": "CogVideoX-5B", "Veo": "Veo-2"}, "masks_layout": "png", "default_label": "normal"}
LISTS = {"name": "gv", "root": "data/gv", "format": "genvideo", "lists": ["train.csv", "val.csv"]}


def config_with(*entries) -> dict:
    return {**TINY_CONFIG, "dataset": {**TINY_CONFIG["dataset"], "ingest": list(entries)}}


def test_schema_format_enum_is_the_registry():
    assert ENTRY["properties"]["format"]["enum"] == list(ADAPTERS)
    assert ENTRY["properties"]["format"]["default"] == "folder"


@pytest.mark.parametrize("fmt", list(ADAPTERS))
def test_every_adapter_option_is_in_the_schema(fmt):
    cls = adapter_class(fmt)
    assert cls.format == fmt
    options = set(cls.options or {}) | set(COMMON_OPTIONS)
    assert sorted(options - set(ENTRY["properties"])) == []


@pytest.mark.parametrize("entry", [DAVIS, BV, LISTS], ids=lambda e: e["format"])
def test_rule_flags_parse_back_to_the_entry(entry):
    validate_config(config_with(entry))
    parser = argparse.ArgumentParser()
    ingest_step.add_arguments(parser)
    args = parser.parse_args(["--root", entry["root"], "--name", entry["name"], "--out", "x.parquet",
                              *shlex.split(cli_flags(entry))])
    got = ingest_step.entry_from_args(args)
    assert got == {k: v for k, v in entry.items() if k != "on_error"}  # on_error is the step's, not the adapter's
    assert args.on_error == entry.get("on_error")


def test_schema_refuses_an_unknown_format():
    with pytest.raises(BrokenVideosError, match="format"):
        validate_config(config_with({"name": "x", "root": "x", "format": "kinetics"}))


def test_snakemake_rule_passes_the_flags(tmp_path):
    config = write_config(tmp_path, dataset={"ingest": [DAVIS], "split": {"by": "ratios", "train": 0.6, "val": 0.2,
                                                                          "test": 0.2}})
    out = subprocess.run([str(SNAKEMAKE), "-s", str(SNAKEFILE), "--directory", str(tmp_path), "--configfile",
                          str(config), "-n", "-p", "results/ingest/dv.parquet"],
                         capture_output=True, text=True, env={"PATH": f"{sys.prefix}/bin:/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(s for s in out.stdout.splitlines() if " ingest --root " in s)
    assert ("ingest --root data/davis --name dv --out results/ingest/dv.parquet --results results "
            "--encode --format davis --fps 12.5 --option 'generator=\"a b\"' --on-error skip "
            "--option 'resolution=\"480p\"'") in line
