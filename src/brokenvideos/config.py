"""Load config.yaml and validate it against workflow/schemas/config.schema.yaml.

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

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(BrokenVideosError):
    pass


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _set_defaults(instance: dict, schema: dict) -> None:
    """Fill `default`s from the schema (as Snakemake's validate(set_default=True) does)."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in instance:
            instance[key] = sub["default"]
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


def validate_config(config: dict, source: str = "config") -> dict:
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise ConfigError(f"{source}: {key}: {err.message}")
    _check_semantics(config, source)
    _set_defaults(config, schema)
    return config


def _check_semantics(config: dict, source: str) -> None:
    names = [g["name"] for g in config["generators"]]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{source}: generators: duplicate generator names {sorted(dup)}")
    for i, b in enumerate(config["prompts"].get("region_buckets", [])):
        if b["min"] > b["max"]:
            raise ConfigError(f"{source}: prompts.region_buckets.{i}: min {b['min']} > max {b['max']}")


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
