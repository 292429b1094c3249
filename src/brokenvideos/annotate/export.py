"""Exports of an annotation for people and for other tools.

* An overlay video (instance colours from the DAVIS palette, the subcategory written next to each
  instance): the paper's SAM2-GUI exports such videos for checking masks at a glance, and a
  reviewer can spot a drifting propagation faster in a video than in PNG folders.
* COCO run-length encoding per video, laid out like YouTube-VIS annotations (one entry per
  instance, one RLE or ``null`` per frame): the format most video-segmentation tooling reads,
  and far smaller than PNGs for sparse masks.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
from pycocotools import mask as mask_utils

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.io.masks import PALETTE
from brokenvideos.io.video import FRAMES_FPS, read_video, write_video

RLE_FORMAT = "brokenvideos-coco-rle/1"


def colour(instance_id: int) -> tuple[int, int, int]:
    return tuple(PALETTE[3 * instance_id: 3 * instance_id + 3])


def render_overlay(frames: np.ndarray, masks: np.ndarray, instances: dict[int, str], alpha: float = 0.5) -> np.ndarray:
    """Blend instance colours into T×H×W×3 RGB frames, outline them and label them."""
    out = frames.copy()
    scale = max(0.3, frames.shape[1] / 720 * 0.6)
    for t in range(len(frames)):
        for k in (int(v) for v in np.unique(masks[t]) if v != 0):
            region = masks[t] == k
            rgb = np.array(colour(k), np.float32)
            out[t][region] = ((1 - alpha) * out[t][region] + alpha * rgb).astype(np.uint8)
            contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out[t], contours, -1, colour(k), 1)
            ys, xs = np.nonzero(region)
            text = f"{k} {instances.get(k, '?')}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
            # above the instance's top-left corner, kept inside the frame
            org = (max(0, min(int(xs.min()), frames.shape[2] - tw)), max(int(ys.min()) - 2, th + 1))
            cv2.putText(out[t], text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
            cv2.putText(out[t], text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour(k), 1, cv2.LINE_AA)
    return out


def _fps(video_path) -> int:
    if Path(video_path).is_dir():  # a frames folder has no rate of its own
        return max(1, round(FRAMES_FPS))
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
    return max(1, round(float(rate))) if rate else 24


def write_overlay(video_path, masks: np.ndarray, instances: dict[int, str], out_path, alpha: float = 0.5,
                  fps: float | None = None) -> None:
    """Overlay mp4 of ``masks`` on the video at ``video_path`` (same frame count and size), at
    ``fps`` (the manifest's) or else the source's own rate."""
    frames = read_video(video_path)
    if frames.shape[:3] != masks.shape:
        t, h, w = frames.shape[:3]
        raise InputError(video_path, f"video is {t} frames of {w}x{h}, masks are {masks.shape[0]} of "
                                     f"{masks.shape[2]}x{masks.shape[1]}")
    write_video(out_path, render_overlay(frames, masks, instances, alpha), fps=max(1, round(fps)) if fps else _fps(video_path))


def encode_coco_rle(masks: np.ndarray, instances: dict[int, str]) -> dict:
    """A JSON-ready document: per instance, one COCO RLE (counts as str) or None per frame."""
    t, h, w = masks.shape
    ids = sorted(set(int(v) for v in np.unique(masks) if v != 0) | set(instances))
    entries = []
    for k in ids:
        binary = np.asfortranarray((masks == k).transpose(1, 2, 0).astype(np.uint8))
        rles = mask_utils.encode(binary)
        areas = mask_utils.area(rles).tolist()
        boxes = mask_utils.toBbox(rles).tolist()
        segs = [{"size": r["size"], "counts": r["counts"].decode("ascii")} if a else None for r, a in zip(rles, areas)]
        entries.append({
            "id": k,
            "subcategory": instances.get(k),
            "segmentations": segs,
            "areas": [int(a) for a in areas],
            "bboxes": [b if a else None for b, a in zip(boxes, areas)],
        })
    return {"format": RLE_FORMAT, "num_frames": t, "height": h, "width": w, "instances": entries}


def decode_coco_rle(doc: dict) -> np.ndarray:
    """Back to the T×H×W uint8 id volume (the inverse of ``encode_coco_rle``)."""
    masks = np.zeros((doc["num_frames"], doc["height"], doc["width"]), np.uint8)
    for entry in doc["instances"]:
        frames = [t for t, seg in enumerate(entry["segmentations"]) if seg is not None]
        if frames:
            decoded = mask_utils.decode([entry["segmentations"][t] for t in frames])  # H×W×N
            masks[frames] = np.where(decoded.transpose(2, 0, 1) > 0, entry["id"], masks[frames])
    return masks


def write_coco_rle(masks: np.ndarray, instances: dict[int, str], out_path) -> None:
    write_json(Path(out_path), encode_coco_rle(masks, instances))
