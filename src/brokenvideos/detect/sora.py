"""The Sora four-label artifact classifier (Simple Visual Artifact Detection in Sora-Generated
Videos, 2025): multi-label classification of generated frames into

  1 boundary / edge defects, 2 texture / noise issues, 3 movement / joint anomalies,
  4 object mismatches / disappearances.

Frame labels come from our masks: frame t has label k when an instance whose taxonomy subcategory
maps to k has pixels in frame t. The mapping from the BrokenVideos taxonomy (Table 1) is ours:

- 1 boundary/edge: visual_breakdown (fragmented, warped, disjointed content), style_inconsistency
  (patches in another style, with hard borders);
- 2 texture/noise: perceptual_overload (dense meaningless texture), symbol_confusion (garbled glyphs);
- 3 movement/joint: motion_anomaly (jumps, jitter), uncanny_valley (humanoid anatomy),
  emotional_misalignment (body language at odds with the scene);
- 4 object mismatch/disappearance: logical_disjunction (vanishing, identity swaps), attribute_shift
  (colour / size drift), prompt_misalignment, omission_of_key_details.

Backbones by name: ``resnet50``, ``efficientnet_b3``, ``efficientnet_b4``, ``vit_base`` (the paper's),
any timm name, or a frozen encoder spec (``frozen: true``, e.g. the default efficientnet_lite0 with
a trainable two-layer head). Metrics: the paper's average multi-label accuracy (the mean over the
four labels of per-label accuracy), and per-label accuracy and F1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brokenvideos.models.backbones import Backbone2d, FrozenImageEncoder
from brokenvideos.detect.base import Configurable, check, register_to_config
from brokenvideos.detect.metrics import f1
from brokenvideos.io.masks import read_video_masks

LABELS = ("boundary_edge", "texture_noise", "movement_joint", "object_mismatch")
SUBCATEGORY_TO_LABEL = {
    "visual_breakdown": 0, "style_inconsistency": 0,
    "perceptual_overload": 1, "symbol_confusion": 1,
    "motion_anomaly": 2, "uncanny_valley": 2, "emotional_misalignment": 2,
    "logical_disjunction": 3, "attribute_shift": 3, "prompt_misalignment": 3, "omission_of_key_details": 3,
}
ALIASES = {"vit_base": "vit_base_patch16_224"}


def frame_labels(mask_dir, subcategories: dict[int, str], num_frames: int) -> np.ndarray:
    """(T, 4) 0/1: which Sora labels have pixels in each frame."""
    out = np.zeros((num_frames, len(LABELS)), np.uint8)
    if not subcategories:
        return out
    masks = read_video_masks(mask_dir, num_frames)
    for inst, sub in subcategories.items():
        if sub in SUBCATEGORY_TO_LABEL:
            present = (masks == inst).reshape(num_frames, -1).any(axis=1)
            out[present, SUBCATEGORY_TO_LABEL[sub]] = 1
    return out


class ArtifactLabelClassifier(Configurable):
    NAME = "sora_labels"
    FROZEN_PREFIXES = ("encoder.",)

    @register_to_config
    def __init__(self, backbone: str = "efficientnet_lite0", frozen: bool = True, input_size=None,
                 weights: str | None = None, hidden: int = 128):
        super().__init__()
        check(self.NAME, "hidden", hidden, isinstance(hidden, int) and hidden >= 1, "a positive integer")
        self.frozen = frozen
        if frozen:
            self.encoder = FrozenImageEncoder(backbone, input_size)
            dim = self.encoder.dim
        else:
            self.trunk = Backbone2d(ALIASES.get(backbone, backbone), 3, weights)
            dim = self.trunk.dim
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, len(LABELS)))

    def encoder_spec(self) -> dict | None:
        return {"encoder": self.config["backbone"], "input_size": self.config["input_size"]} if self.frozen else None

    def forward(self, batch) -> torch.Tensor:
        """{"frames": (B, 3, H, W) in [0, 1], optional "features": (B, D)} -> (B, 4) logits."""
        if torch.is_tensor(batch):
            batch = {"frames": batch}
        feats = batch.get("features")
        if feats is None:
            frames = batch["frames"]
            feats = self.encoder(frames) if self.frozen else self.trunk(frames - 0.5)
        return self.head(feats)

    def training_loss(self, batch, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self(batch), target)


class FrameLabelSet:
    """Generated frames with their four labels; cached encoder features replace decoding when they fit."""

    def __init__(self, rows: list[dict], features: dict | None = None, crop=None, seed: int = 0):
        from brokenvideos.detect.data import load_frames

        self.features, self.crop, self.seed, self.epoch = features, crop, seed, 0
        self.frames = None if features is not None else {r["video_id"]: load_frames(r["path"], 1) for r in rows}
        self.items = [(r["video_id"], t, np.asarray(lab, np.float32)) for r in rows for t, lab in enumerate(r["labels"])]

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, indices):
        from brokenvideos.detect.cache import to_tensor

        xs, ys = [], []
        for i in indices:
            vid, t, lab = self.items[int(i)]
            if self.features is not None:
                xs.append(torch.from_numpy(self.features[vid][t]))
            else:
                img = self.frames[vid][t:t + 1]
                if self.crop:
                    rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                    ch, cw = min(self.crop[0], img.shape[1]), min(self.crop[1], img.shape[2])
                    y0, x0 = int(rng.integers(0, img.shape[1] - ch + 1)), int(rng.integers(0, img.shape[2] - cw + 1))
                    img = img[:, y0:y0 + ch, x0:x0 + cw]
                xs.append(to_tensor(img)[0])
            ys.append(torch.from_numpy(lab))
        key = "features" if self.features is not None else "frames"
        return {key: torch.stack(xs)}, torch.stack(ys)


def multilabel_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    pred = (probs >= threshold).astype(int)
    per = {}
    for k, name in enumerate(LABELS):
        per[name] = {"accuracy": float(np.mean(pred[:, k] == labels[:, k])), "f1": f1(labels[:, k], pred[:, k], 1),
                     "positives": int(labels[:, k].sum())}
    return {"threshold": threshold, "average_accuracy": float(np.mean([v["accuracy"] for v in per.values()])),
            "exact_match": float(np.mean((pred == labels).all(axis=1))), "per_label": per, "frames": int(len(labels))}
