"""`brokenvideos prompts`: sample structured prompt specs and render their text → prompts.parquet."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from brokenvideos.config import derive_seed, load_config
from brokenvideos.io.tables import write_table
from brokenvideos.paths import ResultPaths
from brokenvideos.prompts.taxonomy import (NORMAL, REGION_BUCKETS, SCENE_WEIGHTS,
                                           category_of, renderable)
from brokenvideos.prompts.templates import render_prompt, sample_spec

log = logging.getLogger(__name__)


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    # Sorted keys: the draw must not depend on the mapping's order (YAML order by hand, JSON's
    # sorted keys under Snakemake).
    keys = sorted(weights)
    total = math.fsum(weights[k] for k in keys)
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return keys[rng.choice(len(keys), p=np.array([weights[k] / total for k in keys]))]


def sample_num_regions(rng: np.random.Generator, buckets: list[dict]) -> int:
    b = buckets[rng.choice(len(buckets), p=_normalised([x["weight"] for x in buckets]))]
    return int(rng.integers(b["min"], b["max"] + 1))


def _normalised(w):
    total = math.fsum(w)
    return np.array([x / total for x in w])


def make_prompts(prompts_cfg: dict, run_seed: int) -> pd.DataFrame:
    """Exactly round(num_prompts * normal_fraction) normal prompts; the rest broken."""
    n = prompts_cfg["num_prompts"]
    n_normal = int(round(n * prompts_cfg["normal_fraction"]))
    scene_weights = prompts_cfg.get("scene_weights", SCENE_WEIGHTS)
    subcategories = prompts_cfg.get("subcategories") or renderable()
    buckets = prompts_cfg.get("region_buckets", REGION_BUCKETS)
    order = np.random.default_rng(derive_seed(run_seed, "prompts", "labels")).permutation(n)
    is_normal = np.zeros(n, dtype=bool)
    is_normal[order[:n_normal]] = True
    rows = []
    for i in range(n):
        prompt_id = f"p{i:05d}"
        seed = derive_seed(run_seed, "prompt", prompt_id)
        rng = np.random.default_rng(seed)
        scene = _weighted_choice(rng, scene_weights)
        subject, action, setting = sample_spec(rng, scene)
        if is_normal[i]:
            sub, num_regions, label = NORMAL, 0, "normal"
        else:
            sub = subcategories[rng.integers(len(subcategories))]
            num_regions, label = sample_num_regions(rng, buckets), "broken"
        rows.append({
            "prompt_id": prompt_id,
            "text": render_prompt(scene, subject, action, setting, sub),
            "category": category_of(sub),
            "subcategory": sub,
            "scene": scene,
            "subject": subject,
            "action": action,
            "seed": seed,
            "setting": setting,
            "label": label,
            "num_regions": num_regions,
        })
    return pd.DataFrame(rows)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--out", help="default: <results>/prompts/prompts.parquet")


def run(args) -> int:
    cfg = load_config(args.config)
    out = args.out or ResultPaths(cfg["results"]).prompts
    df = make_prompts(cfg["prompts"], cfg["seed"])
    write_table(df, out, kind="prompts")
    log.info("wrote %d prompts (%d normal) to %s", len(df), (df.label == "normal").sum(), out)
    return 0
