"""Config validation: the shipped configs are valid; a bad value names its key path and file; the CLI
turns it into one `error:` line and exit code 2 before doing any work."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, _merge, run_cli, write_config

from brokenvideos.config import ConfigError, load_config, validate_config
from brokenvideos.errors import BrokenVideosError

REQUIRED = set(yaml.safe_load((REPO / "src/brokenvideos/schemas/config.schema.yaml").read_text())["required"])


def _shipped_configs():
    """config.yaml plus every pipeline config in config/ (a preset library such as
    diffusers_presets.yaml, with a top-level `presets:` mapping, is not a pipeline config)."""
    found = [REPO / "config.yaml"]
    for path in sorted((REPO / "config").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "presets" not in doc:
            found.append(path)
    return found


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_config_validates(path):
    doc = yaml.safe_load(path.read_text())
    if not REQUIRED <= set(doc):
        # An overlay preset: Snakemake merges it over config.yaml (--configfile config/x.yaml).
        doc = _merge(yaml.safe_load((REPO / "config.yaml").read_text()), doc)
    cfg = validate_config(doc, str(path))
    assert cfg["generators"], "a shipped config must name at least one generator"


def test_repo_config_defaults_filled():
    cfg = load_config(REPO / "config.yaml")
    # schema defaults (as Snakemake's validate(set_default=True) fills them)
    assert all("prompts" in g and "shards" in g for g in cfg["generators"])
    assert cfg["generators"][0]["prompts"] == "all"
    assert cfg["resources"]["gpus_per_generate_job"] == 0


def test_tiny_config_is_valid(tiny_config):
    cfg = load_config(tiny_config())
    assert cfg["prompts"]["num_prompts"] == TINY_CONFIG["prompts"]["num_prompts"]
    assert cfg["video"]["qp"] == 18


BAD_VALUES = [
    # (overrides, key path in the message, words of the jsonschema message)
    ({"video": {"width": 15}}, "video.width", "15 is less than the minimum of 16"),
    ({"video": {"width": 65}}, "video.width", "65 is not a multiple of 2"),
    ({"video": {"height": 8}}, "video.height", "8 is less than the minimum of 16"),
    ({"prompts": {"normal_fraction": 2}}, "prompts.normal_fraction", "2 is greater than the maximum of 1"),
    ({"prompts": {"num_prompts": 0}}, "prompts.num_prompts", "0 is less than the minimum of 1"),
    ({"generators": [{"name": "g", "backend": "sora", "family": "grainy"}]}, "generators.0.backend",
     "'sora' is not one of"),
    ({"generators": [{"name": "g", "backend": "synthetic", "family": "oilpaint"}]}, "generators.0.family",
     "'oilpaint' is not one of"),
    ({"generators": [{"name": "ok", "backend": "synthetic", "family": "grainy"},
                     {"name": "bad name!", "backend": "synthetic", "family": "grainy"}]}, "generators.1.name",
     "does not match"),
    ({"annotate": {"method": "paint"}}, "annotate.method", "'paint' is not one of"),
    ({"dataset": {"split": {"by": "random"}}}, "dataset.split.by", "'random' is not one of"),
    ({"prompts": {"subcategories": ["visual_breakdown", "bad_hands"]}}, "prompts.subcategories.1",
     "'bad_hands' is not one of"),
    ({"videos": {"width": 64}}, "<top level>", "'videos' was unexpected"),
]


@pytest.mark.parametrize("overrides,key,message", BAD_VALUES, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_VALUES)])
def test_bad_value_names_file_and_key(tiny_config, overrides, key, message):
    path = tiny_config(**overrides)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {key}: "), text
    assert message in text
    assert "\n" not in text


def test_missing_synthetic_family_is_rejected():
    cfg = copy.deepcopy(TINY_CONFIG)
    del cfg["generators"][1]["family"]
    with pytest.raises(ConfigError, match=r"^cfg\.yaml: generators\.1: 'family' is a required property$"):
        validate_config(cfg, "cfg.yaml")


def test_semantic_checks():
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["generators"].append(dict(cfg["generators"][0]))
    with pytest.raises(ConfigError, match=r"^c: generators: duplicate generator names \['synth-upsampler'\]$"):
        validate_config(cfg, "c")
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["prompts"]["region_buckets"] = [{"min": 5, "max": 2, "weight": 1.0}]
    with pytest.raises(ConfigError, match=r"^c: prompts\.region_buckets\.0: min 5 > max 2$"):
        validate_config(cfg, "c")


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.parametrize("step", ["prompts", "generate", "dataset"])
def test_cli_exits_2_with_one_line_before_any_work(tmp_path, step):
    path = write_config(tmp_path, video={"width": 65})
    extra = {"prompts": [], "generate": ["--generator", "synth-grainy", "--shard", "0"],
             "dataset": ["--videos", "results/videos/x/shard-0.parquet"]}[step]
    result = run_cli([step, "--config", path, *extra], cwd=tmp_path)
    assert result.code == 2
    assert result.error == f"error: {path}: video.width: 65 is not a multiple of 2"
    assert result.stderr.strip() == result.error  # nothing else: it failed before any work
    assert not (tmp_path / "results").exists()


def test_schema_names_exactly_the_baselines_and_localizers_the_code_has():
    """The schema's enums and the code's registries are two lists: a baseline or a localizer added
    to one alone would be rejected at start-up, or accepted and then crash in a job."""
    from brokenvideos.models import ARCHS
    from brokenvideos.models.baselines import BASELINES

    props = yaml.safe_load((REPO / "src/brokenvideos/schemas/config.schema.yaml").read_text())["properties"]
    assert props["evaluate"]["properties"]["baselines"]["items"]["enum"] == list(BASELINES)
    entry = props["train"]["properties"]["localizers"]["items"]["properties"]
    assert entry["model"]["properties"]["arch"]["anyOf"][0]["enum"] == list(ARCHS)
    # the schema holds no model's own arguments: each model checks its own (test below)
    assert set(entry["model"]["properties"]) == {"arch"}
    from brokenvideos.metrics.protocols import PROTOCOLS

    assert props["evaluate"]["properties"]["protocol"]["enum"] == list(PROTOCOLS)


def test_a_model_refuses_arguments_it_does_not_take():
    from brokenvideos.models import build_model

    with pytest.raises(BrokenVideosError, match=r"model st_unet: unknown argument 'width'; it takes \["):
        build_model(arch="st_unet", width=3)
    with pytest.raises(BrokenVideosError, match="model st_unet: depth='3' is not a int"):
        build_model(arch="st_unet", depth="3")
    assert build_model(arch="st_unet", base_channels=4, depth=1).config["depth"] == 1


def test_localizers_are_named_once_and_apart_from_baselines(tiny_config):
    from brokenvideos.config import ConfigError, load_config, localizer_settings

    two = {"localizers": [{"name": "a"}, {"name": "b", "clip_len": 4}], "max_failures": 0}
    cfg = load_config(tiny_config(train=two))
    b = localizer_settings(cfg, "b")
    assert (b["clip_len"], b["crop"], b["max_failures"], b["model"]["arch"]) == (4, [64, 64], 0, "st_unet")
    assert localizer_settings(cfg, "a")["clip_len"] == 8
    with pytest.raises(ConfigError, match="has 2 entries"):
        localizer_settings(cfg)
    with pytest.raises(ConfigError, match="no localizer named 'c'"):
        localizer_settings(cfg, "c")
    with pytest.raises(ConfigError, match=r"train.localizers: duplicate names \['a'\]"):
        load_config(tiny_config(train={"localizers": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ConfigError, match=r"\['empty'\] also named in evaluate.baselines"):
        load_config(tiny_config(train={"localizers": [{"name": "empty"}]}))