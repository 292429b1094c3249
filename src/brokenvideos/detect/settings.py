"""The ``detect:`` config section (defaults live in the schema) and named training recipes."""

from __future__ import annotations

import copy

from brokenvideos.errors import BrokenVideosError
from brokenvideos.train.recipes import SCHEDULES

# He et al. V-B: batch 64, Adam, lr 1e-3. The paper gives no epoch count; 20 is our assumption.
# It calls 1e-3 the *initial* rate but names no schedule: `paper` keeps it constant. cpu_default
# decays it (cosine, no warm-up). For a variant of temporal_defect (resnet_tiny local branch, no
# feature dropout), three seeds' own-generator accuracies spread over 0.6 (smoother) and 2.4
# (grainy) points with the decay, 3.0 and 3.0 without it. Epochs: the earlier temporal_defect
# scored 0.64-0.87 at 3 epochs, 0.77-0.96 at 20, 0.80-0.93 at 30; the current one, on the
# smoother, moved by less than a point from 20 to 30 with the decay.
RECIPES = {
    "cpu_default": {"epochs": 20, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "schedule": "warmup_cosine",
                    "warmup_steps": 0},
    "paper": {"epochs": 20, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "schedule": "constant"},
}


def detect_settings(cfg: dict) -> dict:
    if "detect" not in cfg:
        raise BrokenVideosError("config: detect: section missing (validate the config first)")
    return copy.deepcopy(cfg["detect"])


def resolve_recipe(settings: dict, entry: dict | None = None) -> dict:
    recipe = settings.get("recipe", "cpu_default")
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise BrokenVideosError(f"config: detect.recipe: unknown recipe {recipe!r}; known: {sorted(RECIPES)}")
        recipe = dict(RECIPES[recipe])
    else:
        recipe = {**RECIPES["cpu_default"], **recipe}
    recipe.update(settings.get("overrides") or {})
    recipe.update((entry or {}).get("recipe") or {})
    for key in ("epochs", "batch_size"):
        if not isinstance(recipe.get(key), int) or recipe[key] < 1:
            raise BrokenVideosError(f"config: detect.recipe: {key} must be a positive integer, got {recipe.get(key)!r}")
    if recipe.get("schedule", "constant") not in SCHEDULES:  # before Ray starts, not in a worker
        raise BrokenVideosError(f"config: detect.recipe: unknown schedule {recipe['schedule']!r}; known: {list(SCHEDULES)}")
    return recipe


def detector_entry(settings: dict, name: str) -> dict:
    entries = settings["detectors"]
    if name not in entries:
        raise BrokenVideosError(f"config: detect.detectors: no detector named {name!r}; known: {sorted(entries)}")
    return entries[name]


def detector_kwargs(settings: dict, entry: dict, predictor_dir=None) -> dict:
    """Constructor kwargs: the entry's, plus the run's frozen encoder and trained predictor for temporal_defect."""
    kwargs = dict(entry.get("kwargs") or {})
    kwargs.setdefault("clip_len", settings["clip_len"])
    if entry["detector"] == "temporal_defect":
        kwargs.setdefault("encoder", settings["encoder"])
        kwargs.setdefault("encoder_input_size", settings["encoder_input_size"])
        if predictor_dir is not None:
            kwargs.setdefault("predictor", str(predictor_dir))
    return kwargs


def vidaid_backbones(settings: dict) -> list[str]:
    """VID-AID's backbones: ``detect.vidaid.backbones``, or the run's frozen encoder alone."""
    return list(settings["vidaid"].get("backbones") or [settings["encoder"]])


def store_backbones(settings: dict) -> list[str]:
    """Every backbone the run keeps a feature store for: the detectors' encoder, then VID-AID's."""
    return list(dict.fromkeys([settings["encoder"], *vidaid_backbones(settings)]))


def backbone_input_size(settings: dict, spec: str):
    """``detect.encoder_input_size`` is the detectors' encoder's; other backbones take their own size."""
    return settings["encoder_input_size"] if spec == settings["encoder"] else None
