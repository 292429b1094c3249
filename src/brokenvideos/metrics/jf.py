"""J (region similarity) and F (boundary F-measure) with the DAVIS 2017 semantics, fast.

The numbers are those of davis2017-evaluation (``db_eval_iou``, ``f_measure``, ``_seg2bmap`` in
``davis2017/metrics.py``), which MeViS and vos-benchmark reuse; the tests check equality with
vos-benchmark to 1e-9.

Why it is fast: DAVIS dilates both one-pixel boundary maps over the whole frame with a disk whose
radius is 0.8 % of the diagonal (18 px at 1080p), and that dilation dominates its cost. A boundary
pixel can only be matched by one within that radius, so each frame is cut along empty bands of rows
and columns wider than the radius into independent blocks, and only the blocks holding an object
are processed. The pixel counts, hence J and F, are the same as DAVIS's; the work scales with
the objects' extent instead of the frame's.
"""

from __future__ import annotations

import math
from collections import defaultdict

import cv2
import numpy as np

from brokenvideos.metrics.protocols import protocol as protocol_spec

BOUND_TH = 0.008  # DAVIS 2017 boundary tolerance, a fraction of the image diagonal (f_measure default)
VOID = 255  # DAVIS's void label in ground-truth masks: "don't care" pixels, never an object
# Empty pixels a cut must remove to pay for the extra block's fixed cost (~50 µs of numpy calls,
# what the dilation spends on several thousand pixels); tuned on speckled predictions.
MIN_SPLIT_AREA = 8192


def bound_pix(shape: tuple[int, int], bound_th: float = BOUND_TH) -> float:
    """Dilation radius in pixels: ``bound_th`` of the diagonal, rounded up, as DAVIS computes it.

    A ``bound_th`` of 1 or more is already a radius in pixels (DAVIS's convention). The diagonal is
    computed as ``np.linalg.norm`` does, so the rounding up cannot disagree with DAVIS's.
    """
    height, width = shape
    return bound_th if bound_th >= 1 else math.ceil(bound_th * math.sqrt(height**2 + width**2))


def disk(radius: float) -> np.ndarray:
    """The structuring element of ``skimage.morphology.disk(radius)`` (its default, strict radius).

    Built here so that worker processes need not import scikit-image (~0.8 s) for nine lines.
    """
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return ((x**2 + y**2) <= radius**2).astype(np.uint8)


def boundary_map(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of a mask (or of each mask in a stack), as DAVIS ``_seg2bmap`` at full size.

    A pixel is on the boundary when its 2×2 block towards the bottom right is not uniform, which
    puts the boundary half a pixel towards the origin. DAVIS's edge rules are kept: the last row
    compares with its right neighbour only, the last column with the pixel below only, and the
    bottom-right pixel is never a boundary.
    """
    seg = np.asarray(seg).astype(bool, copy=False)
    here = seg[..., :-1, :-1]
    bmap = np.zeros(seg.shape, dtype=bool)
    bmap[..., :-1, :-1] = (here ^ seg[..., :-1, 1:]) | (here ^ seg[..., 1:, :-1]) | (here ^ seg[..., 1:, 1:])
    bmap[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]
    bmap[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]
    return bmap


def j_per_frame(gt_vol: np.ndarray, pred_vol: np.ndarray) -> np.ndarray:
    """IoU of each frame of two T×H×W masks (non-zero = object); 1 where both are empty (db_eval_iou)."""
    gt_vol, pred_vol = _check_volumes(gt_vol, pred_vol)
    gt_vol, pred_vol = gt_vol.astype(bool, copy=False), pred_vol.astype(bool, copy=False)
    inter = np.count_nonzero(gt_vol & pred_vol, axis=(1, 2))
    union = np.count_nonzero(gt_vol | pred_vol, axis=(1, 2))
    return _iou(inter, union)


def f_per_frame(gt_vol: np.ndarray, pred_vol: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """Boundary F-measure of each frame of two T×H×W masks (non-zero = object), as DAVIS ``f_measure``."""
    return jf_per_frame(gt_vol, pred_vol, bound_th)[1]


def jf_per_frame(
    gt_vol: np.ndarray, pred_vol: np.ndarray, bound_th: float = BOUND_TH, object_id: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """J and F of each frame of one object of two T×H×W volumes, in one pass over the frames.

    The object is the pixels equal to ``object_id`` (then the volumes are uint8 index masks), or
    all non-zero pixels when it is None.
    """
    gt_vol, pred_vol = _check_volumes(gt_vol, pred_vol)
    counts, _ = _counts_per_object(gt_vol, pred_vol, bound_th, by_id=object_id is not None)
    return _jf_from_counts(counts.get(object_id, np.zeros((len(gt_vol), 6), dtype=np.int64)))


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """J of one frame: IoU, 1 when both masks are empty (DAVIS ``db_eval_iou``)."""
    return float(j_per_frame(_frame(gt)[None], _frame(pred)[None])[0])


def boundary_f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of one frame (DAVIS ``f_measure``): 1 when both boundaries are empty, 0 when exactly one is."""
    return float(f_per_frame(_frame(gt)[None], _frame(pred)[None], bound_th)[0])


def evaluate_video(
    gt_vol: np.ndarray, pred_vol: np.ndarray, protocol: str = "mevis", skip_first_last: bool = False
) -> list[dict]:
    """J, F and J&F per object of one video, each the mean over its frames.

    ``gt_vol`` and ``pred_vol`` are T×H×W uint8 index masks (0 = background, k = instance k;
    255 in the GT = void: those pixels are removed from both masks before J and F, as DAVIS's
    ``db_eval_iou``/``db_eval_boundary`` do with their ``void_pixels``).
    ``mevis``: the video is one object (numbered 1), the union of its instances, so an instance
    found under another id still counts. ``davis``: every instance id present in the GT is an
    object, matched to the same id in the prediction; ids only in the prediction are ignored.
    Every frame counts unless ``skip_first_last`` drops the first and last frames, as DAVIS
    semi-supervised evaluation does (the first frame's mask is given to the method there).
    """
    by_instance = protocol_spec(protocol).by_instance
    gt_vol, pred_vol = _check_volumes(gt_vol, pred_vol)
    void = gt_vol == VOID
    if void.any():  # DAVIS: void pixels count in neither J nor F, for any object, GT or prediction
        gt_vol, pred_vol = np.where(void, 0, gt_vol).astype(gt_vol.dtype), np.where(void, 0, pred_vol).astype(pred_vol.dtype)
    if skip_first_last:
        if len(gt_vol) < 3:
            raise ValueError(f"skip_first_last needs at least 3 frames, got {len(gt_vol)}")
        gt_vol, pred_vol = gt_vol[1:-1], pred_vol[1:-1]
    counts, gt_ids = _counts_per_object(gt_vol, pred_vol, BOUND_TH, by_id=by_instance)
    # not by instance: the union of the instances, under the key None, is object 1
    objects = {k: k for k in sorted(gt_ids)} if by_instance else {1: None}
    results = []
    for obj, key in objects.items():
        j, f = (float(v.mean()) for v in _jf_from_counts(counts[key]))
        results.append({"object": obj, "J": j, "F": f, "JF": (j + f) / 2})
    return results


def _frame(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"need an H×W mask, got shape {mask.shape}")
    return mask


def _check_volumes(gt_vol, pred_vol) -> tuple[np.ndarray, np.ndarray]:
    gt_vol, pred_vol = np.asarray(gt_vol), np.asarray(pred_vol)
    if gt_vol.ndim != 3 or gt_vol.shape != pred_vol.shape:
        raise ValueError(f"need two T×H×W masks of one shape, got {gt_vol.shape} and {pred_vol.shape}")
    return gt_vol, pred_vol


def _iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    j = np.ones(len(inter))
    np.divide(inter, union, out=j, where=union > 0)
    return j


def _counts_per_object(
    gt_vol: np.ndarray, pred_vol: np.ndarray, bound_th: float, by_id: bool
) -> tuple[dict[int | None, np.ndarray], set[int]]:
    """T×6 pixel counts per object (see ``_block_counts``), and the ids found in the GT.

    ``by_id`` False: one object, every non-zero pixel, under the key None. True: one object per id
    of the uint8 index volumes, for every id found in the GT or the prediction; frames where an id
    is absent from both keep zero counts, which DAVIS scores J = F = 1.

    Frames are cut into blocks once; ids are found per block, and each id's pixels in a block are
    cut again into that id's own blocks. Frames are binarised block by block, never as whole
    volumes: at 1080p, binarising a volume costs more memory traffic than the metric itself.
    """
    if by_id and not gt_vol.dtype == pred_vol.dtype == np.uint8:
        raise ValueError(f"index masks must be uint8 (DAVIS palette PNGs), got {gt_vol.dtype} and {pred_vol.dtype}")
    kernel = disk(bound_pix(gt_vol.shape[1:], bound_th))
    reach = max(kernel.shape) // 2
    counts = defaultdict(lambda: np.zeros((len(gt_vol), 6), dtype=np.int64))
    gt_ids = set()
    for t, (gt, pred) in enumerate(zip(gt_vol, pred_vol)):
        for block in _blocks(gt, pred, reach):
            gt_block, pred_block = gt[block], pred[block]
            if not by_id:  # the blocks of the union are already the object's
                counts[None][t] += _block_counts(gt_block != 0, pred_block != 0, kernel)
                continue
            in_gt = _ids(gt_block)
            gt_ids |= in_gt
            ids_here = in_gt | _ids(pred_block)
            for k in ids_here:
                gt_obj, pred_obj = gt_block == k, pred_block == k
                # a block holding a single id is already that id's block
                subs = _blocks(gt_obj, pred_obj, reach) if len(ids_here) > 1 else [np.s_[:, :]]
                for sub in subs:
                    counts[k][t] += _block_counts(gt_obj[sub], pred_obj[sub], kernel)
    return counts, gt_ids


def _ids(index_mask: np.ndarray) -> set[int]:
    """Non-zero ids of a uint8 index mask; a 256-bin histogram is 10-20x faster than np.unique."""
    return {int(k) for k in np.flatnonzero(cv2.calcHist([index_mask], [0], None, [256], [0, 256]).ravel()) if k}


def _jf_from_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inter, union, n_gt, n_pred, gt_match, pred_match = counts.T
    return _iou(inter, union), np.array([_f_measure(*c) for c in zip(n_gt, n_pred, gt_match, pred_match)])


def _blocks(gt: np.ndarray, pred: np.ndarray, reach: int) -> list[tuple[slice, slice]]:
    """Blocks of a frame that hold all its object pixels and that J and F can count independently.

    An XY-cut along empty ``_bands``: rows, then columns within each band of rows, then rows within
    each of those, which leaves blocks tight around objects apart from each other. A gap must be
    wider than the dilation reach for correctness, and span ``MIN_SPLIT_AREA`` pixels for speed.
    """
    blocks = [(slice(0, gt.shape[0]), slice(0, gt.shape[1]))]
    for axis in (0, 1, 0):
        cut = []
        for rows, cols in blocks:
            gt_block, pred_block = gt[rows, cols], pred[rows, cols]
            used = gt_block.any(axis=1 - axis) | pred_block.any(axis=1 - axis)
            min_gap = max(reach + 2, math.ceil(MIN_SPLIT_AREA / gt_block.shape[1 - axis]))
            start = (rows, cols)[axis].start
            for band in _bands(used, min_gap):
                band = slice(start + band.start, start + band.stop)
                cut.append((band, cols) if axis == 0 else (rows, band))
        blocks = cut
    return blocks


def _bands(used: np.ndarray, min_gap: int) -> list[slice]:
    """Slices of rows (or columns) that can be processed independently of each other.

    ``used`` marks the lines holding object pixels. Runs of used lines are split where at least
    ``min_gap`` empty lines separate them; with ``min_gap >= reach + 2``, boundaries on either side
    are farther apart than the dilation reaches. Each slice is widened by one line on both sides,
    where the half-pixel shifted boundary can lie and which the boundary of the last used line
    needs; the gap keeps those margins empty and disjoint, so the blocks' counts add up to the
    frame's. The same holds inside a block, whose edges are such empty margins or the image's.
    """
    lines = np.flatnonzero(used)
    if lines.size == 0:
        return []
    splits = np.flatnonzero(np.diff(lines) > min_gap)  # a diff of d leaves d - 1 empty lines
    firsts, lasts = [lines[0], *lines[splits + 1]], [*lines[splits], lines[-1]]
    return [slice(max(int(first) - 1, 0), min(int(last) + 2, used.size)) for first, last in zip(firsts, lasts)]


def _block_counts(gt: np.ndarray, pred: np.ndarray, kernel: np.ndarray) -> tuple[int, ...]:
    """Everything J and F need from one block of a frame.

    Intersection, union, boundary pixels of GT and prediction, and how many of each lie within the
    other's dilated boundary (precision and recall numerators, as DAVIS ``f_measure`` counts them).
    """
    inter, union = np.count_nonzero(gt & pred), np.count_nonzero(gt | pred)
    gt_bound, pred_bound = boundary_map(gt), boundary_map(pred)
    n_gt, n_pred = np.count_nonzero(gt_bound), np.count_nonzero(pred_bound)
    if n_gt == 0 or n_pred == 0:
        return inter, union, n_gt, n_pred, 0, 0  # nothing to match; DAVIS's dilation finds nothing either
    gt_match = np.count_nonzero(cv2.dilate(pred_bound.view(np.uint8), kernel)[gt_bound])
    pred_match = np.count_nonzero(cv2.dilate(gt_bound.view(np.uint8), kernel)[pred_bound])
    return inter, union, n_gt, n_pred, gt_match, pred_match


def _f_measure(n_gt: int, n_pred: int, gt_match: int, pred_match: int) -> float:
    """DAVIS's precision/recall cases: both boundaries empty → 1; exactly one empty → 0."""
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0  # DAVIS sets precision, recall to (1, 0) or (0, 1): F = 0
    precision, recall = pred_match / n_pred, gt_match / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))
