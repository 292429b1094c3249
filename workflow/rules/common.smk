# Shared wiring: the result paths, the CLI entry point, the effective config file, and per-rule resources.
import hashlib
import json
import os
import re
import sys
from pathlib import Path

RESULTS = config["results"]
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)  # this checkout's package, not any other installed one

from brokenvideos.config import localizer_settings
from brokenvideos.detect.settings import store_backbones, vidaid_backbones
from brokenvideos.paths import ResultPaths, backbone_slug

# Every path under the results root comes from P (src/brokenvideos/paths.py, shared with the CLI);
# rules pass wildcard placeholders as names, e.g. P.shard_manifest("{generator}", "{shard}").
P = ResultPaths(RESULTS)

# The CLI runs from the workflow's own source tree, so a conda env from envs/ needs only
# third-party packages. Under --use-conda `python` is the rule's env; otherwise the interpreter
# running Snakemake (the project venv), whatever PATH says.
_USE_CONDA = any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
PYTHON = "python" if _USE_CONDA else sys.executable
BV = f"PYTHONPATH={SRC} {PYTHON} -m brokenvideos"


def _effective_config_path():
    """The validated config (after --config/--configfile overrides) as one file the CLI reads.

    Content-addressed and written once: a dry run or another run with a different config writes a
    different file, never the one running jobs read. Jobs get the path from $BROKENVIDEOS_CONFIG,
    not from `params`, so a new path never triggers re-runs: each rule's `digest` param names the
    config sections it depends on, and only those re-run it.
    """
    text = json.dumps(config, sort_keys=True, indent=1)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = P.effective_config(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


os.environ["BROKENVIDEOS_CONFIG"] = _effective_config_path()


def section_digest(*keys):
    """A params value that changes exactly when these config sections change (re-run trigger)."""
    blob = json.dumps({k: config.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


GENERATORS = {g["name"]: g for g in config["generators"]}
SHARDS = [(name, k) for name, g in GENERATORS.items() for k in range(g.get("shards", 1))]


def gpus_for(kind):
    return config.get("resources", {}).get(f"gpus_per_{kind}_job", 0)


# Memory (MB) and wall time (minutes) per rule, what a cluster executor reserves (profiles/).
# Sized for the embedded default with headroom; config `resources.mem_mb` / `resources.runtime`
# ({name of the rule: value}) override any entry, e.g. for diffusers generation or SAM2 on long videos.
RESOURCES = {
    "default": {"mem_mb": 2000, "runtime": 30},
    "prompts": {"mem_mb": 1000, "runtime": 10},
    "generate_shard": {"mem_mb": 4000, "runtime": 120},
    "annotate_shard": {"mem_mb": 4000, "runtime": 120},
    "annotation_quality": {"mem_mb": 8000, "runtime": 240},
    "ingest": {"mem_mb": 2000, "runtime": 60},
    "dataset": {"mem_mb": 4000, "runtime": 60},
    "train_localizer": {"mem_mb": 8000, "runtime": 480},
    "predict_localizer": {"mem_mb": 4000, "runtime": 60},
    "predict_baseline": {"mem_mb": 2000, "runtime": 60},
    "evaluate_predictions": {"mem_mb": 2000, "runtime": 30},
    "tables": {"mem_mb": 2000, "runtime": 15},
    "degrade_videos": {"mem_mb": 2000, "runtime": 60},
    "detect_robustness": {"mem_mb": 4000, "runtime": 60},
    "localize_robustness": {"mem_mb": 4000, "runtime": 60},
}


def rule_resources(name):
    """mem_mb and runtime for the resources of the named rule (table above, then config)."""
    base = RESOURCES.get(name, RESOURCES["default"])
    res = config.get("resources", {})
    return {key: res.get(key, {}).get(name, base[key]) for key in ("mem_mb", "runtime")}


def shard_files(path_of):
    """``path_of(generator, shard)`` (a ResultPaths method) for every shard of every generator."""
    return [str(path_of(g, k)) for g, k in SHARDS]


def train_threads():
    ray_cfg = config["train"]["ray"]
    return ray_cfg["num_workers"] * ray_cfg["cpus_per_worker"]


# Defaults live in the schema (validate(set_default=True) in the Snakefile filled them in).
LOCALIZERS = [entry["name"] for entry in config["train"]["localizers"]]
EVAL_BASELINES = config["evaluate"]["baselines"]


def localizer_digest(wildcards):
    """Re-run trigger of one localizer's training: its settings as the train step reads them
    (config.localizer_settings: its entry plus the shared run keys) and the seed."""
    settings = localizer_settings(config, wildcards.model)
    return hashlib.sha256(json.dumps({"seed": config["seed"], "train": settings}, sort_keys=True).encode()).hexdigest()[:16]


def evaluate_digest():
    """section_digest("evaluate") without evaluate.external: importing one more outside model
    re-scores no other row (and the digest is the old one while the list is empty)."""
    settings = {k: v for k, v in config["evaluate"].items() if k != "external"}
    return hashlib.sha256(json.dumps({"evaluate": settings}, sort_keys=True).encode()).hexdigest()[:16]


# Outside models' masks (evaluate.external), imported into predictions/<name>/<initial|final>/.
EXTERNAL = {(e["name"], P.imported_checkpoint(e.get("finetuned", False))): e for e in config["evaluate"]["external"]}
if len(EXTERNAL) < len(config["evaluate"]["external"]):
    raise ValueError("config: evaluate.external: two entries have the same name and finetuned")
if {name for name, _ in EXTERNAL} & set(LOCALIZERS + EVAL_BASELINES):
    raise ValueError("config: evaluate.external: a name is also a localizer's or a baseline's")


def table_entries():
    """(method, fine-tuned?, model, checkpoint) rows of Table 2, in the paper's order."""
    rows = [(name, ft, name, ckpt) for name in LOCALIZERS for ft, ckpt in ((False, "initial"), (True, "final"))]
    rows += [(name, ckpt == "final", name, ckpt) for name, ckpt in EXTERNAL]
    rows += [(b, False, b, "none") for b in EVAL_BASELINES]
    return rows


def table_entry_files(path_of):
    """``path_of(model, checkpoint)`` (a ResultPaths method) for every row of Table 2."""
    return [str(path_of(m, c)) for _, _, m, c in table_entries()]


def table_entry_args():
    return " ".join(f"--entry {method} {'yes' if ft else 'no'} {P.metrics_dir(m, c)}"
                    for method, ft, m, c in table_entries())


# Detection (detect.smk)
DETECT = config.get("detect", {})
DETECTORS = list(DETECT.get("detectors", {}))
SORA = list(DETECT.get("sora", {}).get("classifiers", {}))
# Feature stores, one per backbone (slug -> spec): the detectors' encoder first, then VID-AID's.
BACKBONES = {backbone_slug(b): b for b in store_backbones(DETECT)} if DETECT else {}
ENCODER_SLUG = backbone_slug(DETECT["encoder"]) if DETECT else None
VIDAID_STORES = [str(P.feature_index_meta(backbone_slug(b))) for b in vidaid_backbones(DETECT)] if DETECT else []


def detect_threads():
    ray_cfg = DETECT.get("ray", {})
    return ray_cfg.get("num_workers", 2) * ray_cfg.get("cpus_per_worker", 1)
