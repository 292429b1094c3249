"""Named optimisation recipes. The three paper recipes are BrokenVideos Section 4.2 verbatim;
``cpu_default`` is ours, sized so the embedded default trains in minutes on two CPU workers.

Keys: epochs | max_steps, lr, weight_decay, schedule (constant | warmup_decay | warmup_cosine),
warmup_steps, batch_size (per worker) or global_batch_size, grad_accum.
"""

from __future__ import annotations

from brokenvideos.errors import BrokenVideosError

SCHEDULES = ("constant", "warmup_decay", "warmup_cosine")  # lr_factor's

RECIPES: dict[str, dict] = {
    # A step budget, not epochs: ~10 min on two CPU workers whatever the dataset size.
    "cpu_default": {"max_steps": 2000, "lr": 3e-3, "weight_decay": 1e-4, "schedule": "warmup_cosine",
                    "warmup_steps": 20, "batch_size": 4, "grad_accum": 1},
    # SAMWISE: 8 epochs, constant lr 1e-5, global batch 16, AdamW, no weight decay.
    "samwise": {"epochs": 8, "lr": 1e-5, "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0,
                "global_batch_size": 16, "grad_accum": 1},
    # GLUS: 3,000 steps, lr 3e-4, weight decay 0, warm-up-decay with 100 warm-up steps,
    # batch 5 per device × 2 gradient-accumulation steps.
    "glus": {"max_steps": 3000, "lr": 3e-4, "weight_decay": 0.0, "schedule": "warmup_decay",
             "warmup_steps": 100, "batch_size": 5, "grad_accum": 2},
    # VideoLISA: 2,000 steps, AdamW lr 3e-4, weight decay 0, WarmupDecayLR with 100 warm-up steps.
    # The paper gives no batch size; 2 per device is our assumption.
    "videolisa": {"max_steps": 2000, "lr": 3e-4, "weight_decay": 0.0, "schedule": "warmup_decay",
                  "warmup_steps": 100, "batch_size": 2, "grad_accum": 1},
}


def resolve_recipe(train_cfg: dict, num_workers: int) -> dict:
    """The recipe named in ``train.recipe`` (or given inline) with ``train.overrides`` applied."""
    recipe = train_cfg.get("recipe", "cpu_default")
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise BrokenVideosError(f"config: train.recipe: unknown recipe {recipe!r}; known: {sorted(RECIPES)}")
        recipe = dict(RECIPES[recipe])
    overrides = train_cfg.get("overrides", {})
    for a, b in (("epochs", "max_steps"), ("max_steps", "epochs")):
        if a in overrides and b not in overrides:  # overriding the budget replaces the recipe's
            recipe.pop(b, None)
    recipe.update(overrides)
    if "global_batch_size" in recipe:
        per_step = num_workers * recipe.get("grad_accum", 1)
        if recipe["global_batch_size"] % per_step:
            raise BrokenVideosError(f"config: train: global batch {recipe['global_batch_size']} is not divisible "
                                    f"by {num_workers} workers × {recipe.get('grad_accum', 1)} accumulation steps")
        recipe["batch_size"] = recipe["global_batch_size"] // per_step
    if ("epochs" in recipe) == ("max_steps" in recipe):
        raise BrokenVideosError("config: train: a recipe sets exactly one of epochs and max_steps")
    return recipe


def lr_factor(step: int, total_steps: int, recipe: dict) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based)."""
    import math

    warm = recipe.get("warmup_steps", 0)
    if recipe["schedule"] == "constant":
        return 1.0
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total_steps - warm))
    if recipe["schedule"] == "warmup_decay":  # DeepSpeed WarmupDecayLR: linear decay to 0
        return max(0.0, 1.0 - progress)
    if recipe["schedule"] == "warmup_cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise BrokenVideosError(f"config: train: unknown schedule {recipe['schedule']!r}")
