"""SyntheticGenerator: prompt spec → scene → artifacts (with the exact mask of each) → fingerprint.

Scene content and the artifact plan come from the prompt's seed (every family renders the same
scene, so families differ only by fingerprint); the family's noise comes from the per-video seed.
"""

from __future__ import annotations

import numpy as np

from brokenvideos.generators.base import GeneratedVideo, VideoGenerator
from brokenvideos.generators.synthetic.artifacts import (INJECTORS, SUBJECT_LEVEL, apply_region_artifact,
                                                         plan_region_artifact, plan_subject_artifact)
from brokenvideos.generators.synthetic.families import REAL_FAMILIES, apply_fingerprint
from brokenvideos.generators.synthetic.scene import render_scene, sample_scene

MAX_PLACEMENT_TRIES = 8  # re-place an artifact that happened to change no pixel (e.g. blur on a flat area)


class SyntheticGenerator(VideoGenerator):
    backend = "synthetic"

    def __init__(self, gen_cfg, video_cfg, run_seed):
        super().__init__(gen_cfg, video_cfg, run_seed)
        self.family = gen_cfg["family"]
        apply_fingerprint(np.zeros((1, 2, 2, 3), np.uint8), self.family, 0)  # unknown family fails here

    @property
    def is_real(self) -> bool:
        return self.family in REAL_FAMILIES

    def describe(self) -> dict:
        return {"backend": self.backend, "family": self.family}

    def plan(self, prompt: dict):
        """The scene and the ordered artifact list (subject-level first, then region-level)."""
        v = self.video_cfg
        rng = np.random.default_rng(int(prompt["seed"]))
        n_regions = 0 if self.is_real else int(prompt.get("num_regions", 0))
        kinds = []
        if n_regions:
            options = INJECTORS[prompt["subcategory"]]
            kinds = [options[int(rng.integers(len(options)))] for _ in range(n_regions)]
        n_subject = sum(k in SUBJECT_LEVEL for k in kinds)
        spec = sample_scene(rng, prompt["scene"], v["width"], v["height"], v["num_frames"], max(1, n_subject))
        subject_ids = iter(rng.permutation(len(spec.subjects)))
        mods = [plan_subject_artifact(k, int(next(subject_ids)), spec, rng) for k in kinds if k in SUBJECT_LEVEL]
        regions = [plan_region_artifact(k, spec, rng) for k in kinds if k not in SUBJECT_LEVEL]
        return spec, mods, regions, rng

    def render_raw(self, prompt: dict, with_artifacts: bool = True):
        """(frames, clean, id masks, {id: subcategory}) before the family fingerprint.

        A pixel is labelled iff the frame differs there from the clean render of the same spec;
        ids follow the order artifacts were applied.
        """
        spec, mods, regions, rng = self.plan(prompt)
        clean = render_scene(spec)
        labels = np.zeros(clean.shape[:3], np.uint8)
        if not with_artifacts or not (mods or regions):
            return clean, clean, labels, {}
        frames, instances, applied = clean, {}, []
        for mod in mods:
            applied.append(mod)
            frames = self._record(frames, render_scene(spec, applied), labels, instances, prompt["subcategory"])
        for art in regions:
            for _ in range(MAX_PLACEMENT_TRIES):
                new = apply_region_artifact(frames, art, spec)
                if (new != frames).any():
                    break
                art = plan_region_artifact(art.kind, spec, rng)
            frames = self._record(frames, new, labels, instances, prompt["subcategory"])
        labels[(frames == clean).all(-1)] = 0
        present = set(np.unique(labels)) - {0}
        return frames, clean, labels, {k: v for k, v in instances.items() if k in present}

    def render(self, prompt: dict, seed: int, with_artifacts: bool = True):
        """(frames, id masks, {id: subcategory}): the raw render with the fingerprint applied last."""
        frames, _, labels, instances = self.render_raw(prompt, with_artifacts)
        return apply_fingerprint(frames, self.family, seed), labels, instances

    @staticmethod
    def _record(before, after, labels, instances, subcategory):
        k = len(instances) + 1
        labels[(after != before).any(-1)] = k
        instances[k] = subcategory
        return after

    def generate(self, prompt: dict, seed: int) -> GeneratedVideo:
        frames, masks, instances = self.render(prompt, seed)
        label = "real" if self.is_real else prompt["label"]
        return GeneratedVideo(frames=frames, fps=int(self.video_cfg["fps"]), label=label, masks=masks,
                              instances=instances,
                              params={"family": self.family, "seed": int(seed), "prompt_seed": int(prompt["seed"]),
                                      "num_instances": len(instances)})
