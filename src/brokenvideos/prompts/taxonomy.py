"""The artifact taxonomy of BrokenVideos (Table 1) and the scene categories of its Section 3.3."""

from __future__ import annotations

# BrokenVideos Table 1: 5 categories, 11 subcategories.
TAXONOMY: dict[str, list[str]] = {
    "technical": ["visual_breakdown", "motion_anomaly"],
    "semantic": ["symbol_confusion", "logical_disjunction", "emotional_misalignment"],
    "cognitive": ["uncanny_valley", "perceptual_overload"],
    "consistency": ["style_inconsistency", "attribute_shift"],
    "instructional": ["prompt_misalignment", "omission_of_key_details"],
}
NORMAL = "normal"
SUBCATEGORY_TO_CATEGORY = {sub: cat for cat, subs in TAXONOMY.items() for sub in subs}
SUBCATEGORIES = list(SUBCATEGORY_TO_CATEGORY)

# Table 1 descriptions, used in prompt text.
DESCRIPTIONS = {
    "visual_breakdown": "fragmented, warped, or disjointed content",
    "motion_anomaly": "unnatural transitions or temporal jumps",
    "symbol_confusion": "culturally nonsensical or meaningless text",
    "logical_disjunction": "causally incoherent scene transitions",
    "emotional_misalignment": "actions and environment express conflicting emotions",
    "uncanny_valley": "unsettling abnormalities in humanoid figures",
    "perceptual_overload": "high-density meaningless information",
    "style_inconsistency": "abrupt or jarring transitions between visual styles",
    "attribute_shift": "object properties change inconsistently",
    "prompt_misalignment": "output deviates significantly from intended description",
    "omission_of_key_details": "omission of key details",
}

# BrokenVideos Section 3.3 scene shares: Human 53 %, Fauna & Flora 12 %, Robotic 8 %, Urban 8 %,
# Virtual 7 %, Natural landscapes 7 %, Vehicles 5 %.
SCENE_WEIGHTS = {
    "human": 0.53,
    "fauna_flora": 0.12,
    "robotic": 0.08,
    "urban": 0.08,
    "virtual": 0.07,
    "natural_landscape": 0.07,
    "vehicle": 0.05,
}

# BrokenVideos Section 3.3: 80 % of videos have 1–2 artifact regions, 17 % 3–6, 3 % 7–10.
REGION_BUCKETS = [
    {"min": 1, "max": 2, "weight": 0.80},
    {"min": 3, "max": 6, "weight": 0.17},
    {"min": 7, "max": 10, "weight": 0.03},
]

# Subcategories the synthetic generator can render as a localized pixel change: its injector
# registry is the one list of them.
def renderable() -> list[str]:
    from brokenvideos.generators.synthetic.artifacts import INJECTORS

    return [s for s in SUBCATEGORIES if s in INJECTORS]


def category_of(subcategory: str) -> str:
    return NORMAL if subcategory == NORMAL else SUBCATEGORY_TO_CATEGORY[subcategory]


def region_bucket(n: int) -> str:
    """The paper's bucket label for a count of artifact regions."""
    if n <= 0:
        return "0"
    for b in REGION_BUCKETS:
        if b["min"] <= n <= b["max"]:
            return f"{b['min']}-{b['max']}"
    return f">{REGION_BUCKETS[-1]['max']}"
