"""Training-free localizers: meaningful non-learned rows for Table 2."""

from __future__ import annotations

import cv2
import numpy as np

# Residual threshold: mean + RESIDUAL_SIGMAS·std of the video's own residuals, and never below
# RESIDUAL_FLOOR grey levels (H.264 at CRF 18 leaves residuals of a few levels everywhere).
RESIDUAL_SIGMAS = 3.0
RESIDUAL_FLOOR = 12.0


def temporal_residual_masks(frames: np.ndarray) -> np.ndarray:
    """Flow-compensated temporal residual, thresholded: where frame t is not explained by frame t-1
    moved along the optical flow. Camera pans and smooth motion are compensated; jumps, flicker,
    boiling noise and popping glyphs are not. Returns T×H×W uint8 (0/1)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = grey[0].shape
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32)
    residuals = np.zeros((len(frames), h, w), np.float32)
    for t in range(len(frames)):
        ref = t - 1 if t > 0 else 1  # the first frame is compared with the second
        if ref >= len(frames):
            break
        flow = cv2.calcOpticalFlowFarneback(grey[t], grey[ref], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        warped = cv2.remap(frames[ref], grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(frames[t].astype(np.float32) - warped.astype(np.float32)).mean(-1)
        residuals[t] = cv2.GaussianBlur(diff, (0, 0), 1.5)
    thr = max(RESIDUAL_FLOOR, float(residuals.mean() + RESIDUAL_SIGMAS * residuals.std()))
    masks = (residuals > thr).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    return np.stack([cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel) for m in masks])


def empty_masks(frames: np.ndarray) -> np.ndarray:
    """"No artifact anywhere": the floor a localizer has to beat. Under the mevis protocol it is not
    0 on broken videos: every frame whose ground truth is empty scores J = F = 1."""
    return np.zeros(frames.shape[:3], np.uint8)


BASELINES = {"temporal_residual": temporal_residual_masks, "empty": empty_masks}
