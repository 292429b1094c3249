"""Load config.yaml and validate it against the packaged schema (brokenvideos/schemas/config.schema.yaml).

The same schema serves Snakemake's ``validate`` at start-up and every CLI step, so a bad value is
caught before any work, with its key path and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

from brokenvideos.errors import BrokenVideosError

from brokenvideos.resources import resource_path, resource_text

SCHEMA = "schemas/config.schema.yaml"  # package data: the one owner of every default
SCHEMA_PATH = resource_path(SCHEMA)


class ConfigError(BrokenVideosError):
    pass


def load_schema() -> dict:
    return yaml.safe_load(resource_text(SCHEMA))


def _set_defaults(instance: dict, schema: dict) -> None:
    """Fill `default`s from the schema (as Snakemake's validate(set_default=True) does)."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in instance:
            instance[key] = json.loads(json.dumps(sub["default"]))  # a copy: items get defaults too
        if isinstance(instance.get(key), dict):
            _set_defaults(instance[key], sub)
        if isinstance(instance.get(key), list) and isinstance(sub.get("items"), dict):
            for item in instance[key]:
                if isinstance(item, dict):
                    _set_defaults(item, sub["items"])


def with_defaults(config: dict, section: str):
    """A deep copy of ``config[section]`` with the schema's defaults filled in (for callers that
    hold a config dict that did not come through ``load_config``)."""
    value = {section: json.loads(json.dumps(config.get(section, {})))}
    _set_defaults(value, {"properties": {section: load_schema()["properties"][section]}})
    return value[section]


SHARED_TRAIN_KEYS = ("ray", "checkpoint", "max_failures")


def localizer_names(config: dict) -> list[str]:
    return [e["name"] for e in with_defaults(config, "train")["localizers"]]


def localizer_settings(config: dict, name: str | None = None) -> dict:
    """One localizer's training settings: its ``train.localizers`` entry plus the shared run keys
    (``ray``, ``checkpoint``, ``max_failures``), schema defaults filled in. ``name`` may be left
    out when there is exactly one localizer."""
    train = with_defaults(config, "train")
    entries = {e["name"]: e for e in train["localizers"]}
    if name is None:
        if len(entries) != 1:
            raise ConfigError(f"config: train.localizers has {len(entries)} entries {sorted(entries)}: name one")
        name = next(iter(entries))
    if name not in entries:
        raise ConfigError(f"config: train.localizers: no localizer named {name!r}; known: {sorted(entries)}")
    return {**entries[name], **{k: train[k] for k in SHARED_TRAIN_KEYS}}


def validate_config(config: dict, source: str = "config") -> dict:
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise ConfigError(f"{source}: {key}: {err.message}")
    _set_defaults(config, schema)
    _check_semantics(config, source)
    return config


def _check_semantics(config: dict, source: str) -> None:
    names = [g["name"] for g in config["generators"]]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{source}: generators: duplicate generator names {sorted(dup)}")
    for i, b in enumerate(config["prompts"].get("region_buckets", [])):
        if b["min"] > b["max"]:
            raise ConfigError(f"{source}: prompts.region_buckets.{i}: min {b['min']} > max {b['max']}")
    localizers = [e["name"] for e in config.get("train", {}).get("localizers", [])]
    dup = {n for n in localizers if localizers.count(n) > 1}
    if dup:
        raise ConfigError(f"{source}: train.localizers: duplicate names {sorted(dup)}")
    # A localizer's rows and a baseline's share Table 2's Method column and results/metrics/<name>/.
    clash = set(localizers) & set(config.get("evaluate", {}).get("baselines", []))
    if clash:
        raise ConfigError(f"{source}: train.localizers: {sorted(clash)} also named in evaluate.baselines")


def load_config(path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return validate_config(config, str(path))


def config_digest(section) -> str:
    """A short stable hash of a config section: recorded in manifests for provenance."""
    blob = json.dumps(section, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def derive_seed(*parts) -> int:
    """A 63-bit seed derived from the run seed and names (generator, prompt_id, …).

    Hashing rather than adding keeps seeds independent of ordering and of how work is sharded.
    """
    blob = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1
