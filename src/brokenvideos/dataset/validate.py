"""Every video decodes, and its masks match it in frame count and size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brokenvideos.errors import InputError
from brokenvideos.io.masks import read_instances, read_video_masks
from brokenvideos.io.tables import LABELS
from brokenvideos.io.video import probe_video


def validate_video(row: dict) -> dict:
    """Check one manifest row against its files; returns measured facts; raises InputError."""
    if row["label"] not in LABELS:
        raise InputError(row["path"], f"unknown label {row['label']!r} (expected one of {', '.join(LABELS)})")
    info = probe_video(row["path"])
    for key in ("num_frames", "width", "height"):
        if row.get(key) and int(row[key]) != info[key]:
            raise InputError(row["path"], f"manifest says {key}={row[key]}, file has {info[key]}")
    facts = {"num_instances": 0, "mask_pixels": 0}
    mask_dir = row.get("mask_dir") or ""
    if mask_dir:
        masks = read_video_masks(mask_dir, info["num_frames"], (info["height"], info["width"]))
        ids = set(np.unique(masks).tolist()) - {0}
        declared = read_instances(mask_dir)
        undeclared = ids - set(declared)
        if declared and undeclared:
            raise InputError(Path(mask_dir) / "instances.json", f"mask ids {sorted(undeclared)} are not declared")
        if row["label"] in ("normal", "real") and ids:
            raise InputError(mask_dir, f"a {row['label']} video must have all-zero masks, found ids {sorted(ids)}")
        facts.update(num_instances=len(ids), mask_pixels=int((masks > 0).sum()),
                     instance_subcategories=json.dumps({str(k): declared.get(k, "unknown") for k in sorted(ids)}))
    return facts
