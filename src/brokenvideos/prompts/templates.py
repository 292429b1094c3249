"""Structured prompt specs → prompt text.

The spec (scene, subject, action, artifact subcategory) is what the synthetic generator renders,
so the words and the pixels agree.
"""

from __future__ import annotations

import numpy as np

SUBJECTS = {
    "human": ["a woman in a red coat", "a man with a backpack", "a dancer", "a child", "an old man"],
    "fauna_flora": ["a deer", "a fox", "a heron", "a blooming sunflower", "a cat"],
    "robotic": ["a humanoid robot", "a robotic arm", "a delivery robot", "a drone"],
    "urban": ["a cyclist", "a street vendor", "a pedestrian with an umbrella", "a tram"],
    "virtual": ["a game avatar", "a neon creature", "a low-poly knight", "a hologram"],
    "natural_landscape": ["a flock of birds", "a waterfall", "a drifting cloud", "a tumbleweed"],
    "vehicle": ["a red car", "a motorbike", "a city bus", "a sailboat"],
}
ACTIONS = {
    "human": ["walking across", "dancing in", "running through", "waving in", "jumping in"],
    "fauna_flora": ["moving through", "grazing in", "swaying in", "hopping across"],
    "robotic": ["rolling across", "assembling parts in", "patrolling", "hovering over"],
    "urban": ["crossing", "waiting in", "moving along", "turning in"],
    "virtual": ["floating through", "fighting in", "teleporting around", "glowing in"],
    "natural_landscape": ["drifting over", "flowing through", "moving across"],
    "vehicle": ["driving along", "speeding through", "parking in", "sailing across"],
}
SETTINGS = {
    "human": ["a sunny park", "a busy street", "a dance studio", "a beach at dusk"],
    "fauna_flora": ["a meadow", "a forest clearing", "a garden", "a riverbank"],
    "robotic": ["a factory hall", "a laboratory", "a warehouse", "a sidewalk"],
    "urban": ["a city square", "a rainy avenue", "a market street", "a crosswalk"],
    "virtual": ["a neon cyberspace", "a pixel-art castle", "a digital arena"],
    "natural_landscape": ["a mountain valley", "a desert", "a rocky coast", "a glacier"],
    "vehicle": ["a highway", "a harbour", "a mountain road", "a parking lot"],
}
# Prompt engineering to elicit each artifact (BrokenVideos 3.2: prompts written to trigger failures).
ARTIFACT_PHRASES = {
    "visual_breakdown": "while parts of the {noun} fragment and warp into disjointed shapes",
    "motion_anomaly": "with the {noun} suddenly jumping to another place between frames",
    "symbol_confusion": "next to a sign covered in meaningless, garbled lettering",
    "logical_disjunction": "and the {noun} abruptly disappears mid-scene",
    "emotional_misalignment": "laughing cheerfully at a funeral",
    "uncanny_valley": "with eyes that blink out of sync",
    "perceptual_overload": "as dense meaningless fragments fill part of the frame",
    "style_inconsistency": "as a patch of the scene turns from realism into flat cartoon colours",
    "attribute_shift": "while the colour of the {noun} keeps changing",
    "prompt_misalignment": "though the video shows something else entirely",
    "omission_of_key_details": "wearing glasses that are missing in the video",
}
NORMAL_SUFFIX = "realistic, stable and temporally consistent"


def noun_of(subject: str) -> str:
    return subject.split(" ", 1)[1] if " " in subject else subject


def render_prompt(scene: str, subject: str, action: str, setting: str, subcategory: str) -> str:
    base = f"{subject[0].upper()}{subject[1:]} {action} {setting}"
    if subcategory == "normal":
        return f"{base}, {NORMAL_SUFFIX}."
    return f"{base}, {ARTIFACT_PHRASES[subcategory].format(noun=noun_of(subject))}."


def sample_spec(rng: np.random.Generator, scene: str) -> tuple[str, str, str]:
    subject = SUBJECTS[scene][rng.integers(len(SUBJECTS[scene]))]
    action = ACTIONS[scene][rng.integers(len(ACTIONS[scene]))]
    setting = SETTINGS[scene][rng.integers(len(SETTINGS[scene]))]
    return subject, action, setting
