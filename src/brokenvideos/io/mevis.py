"""The MeViS layout (referring video segmentation), the one place its field names live.

One split folder holds::

    JPEGImages/<video>/<frame>.jpg
    meta_expressions.json  {"videos": {video: {"expressions": {exp_id: {"exp": text,
                                                                      "obj_id": [int, ...],
                                                                      "anno_id": [int, ...]}},
                                                "frames": [frame name without extension, ...]}}}
    mask_dict.json         {str(anno_id): [COCO RLE {"size": [h, w], "counts": str} or null, one per frame]}

and a model's output, as the repositories below write it, is ``<out>/<video>/<exp_id>/<frame>.png``.

What the readers of the repositories that fine-tune on this layout take from it (checked in their
published code; the paper fine-tunes SAMWISE, GLUS and VideoLISA on BrokenVideos):

- MeViS itself (henghuiding/MeViS, ``lmpm/data/datasets/mevis.py``): per video ``frames`` (sorted)
  and per expression ``exp``, ``obj_id`` (cast to int) and ``anno_id`` (cast to str); frame ``i``
  of an expression is the union of ``mask_dict[anno_id][i]``, null meaning absent. It opens
  ``mask_dict.json`` only when the split folder is named ``train`` and skips videos of fewer than 2
  frames. Image paths are ``JPEGImages/<video>/<frame>.jpg``.
- SAMWISE (its ``datasets/mevis.py`` and ``inference_mevis.py``, read in forks of
  claudiacuttano/SAMWISE): training reads the same fields and ``mask_dict.json``, and draws another
  sample when every sampled frame of an expression is empty, so an all-empty expression is never
  learnt. Inference on the split named ``valid_u`` scores against ``mask_dict.json`` and writes no
  masks; any other split name (e.g. ``valid``) writes 0/255 greyscale PNGs to
  ``Annotations/<video>/<exp_id>/<frame>.png``.
- GLUS (GLUS-video/GLUS, ``inference_iter.py`` and ``dataset/refer_video_seg_dataset.py``): ``exp``
  (a trailing full stop is dropped), ``anno_id`` looked up as ``mask_dict[str(anno_id)][frame]``,
  ``frames``; videos of fewer than 4 frames are skipped and inference needs more frames than its
  context window (4 by default); ``mask_dict.json`` is read for ``train`` only. It writes 0/255
  PNGs to ``<vis_save_path>/<video>/<exp_id>/<frame>.png`` and, on its backward pass, names frames
  ``{int(frame):05d}.png``, so frame names must be zero-padded five-digit numbers.
- VideoLISA (showlab/VideoLISA, ``utils/mevis_dataset.py``, ``evaluation/mevis_val_u/``): training
  reads ``mask_dict.json`` for ``train`` and ``valid_u`` alike; on ``valid_u`` it keeps at most 8
  expressions per video. Inference lists the folders of ``JPEGImages`` (so every folder there needs
  an entry in ``meta_expressions.json``) and writes 0/255 PNGs to
  ``<vis_save_path>/<video>/<exp_id>/<frame>.png``; its evaluator takes the frame index from the
  position in ``frames``.

So an export writes both JSON files for every split (``mask_dict.json`` is only ignored where a
reader does not need it), frame names ``00000``, ``00001``, …, ids as ints and RLE counts as str.
Ref-YouTube-VOS, the other layout these readers take, keeps masks as palette PNGs instead:
``<split>/JPEGImages``, ``<split>/Annotations/<video>/<frame>.png`` (pixel value = ``obj_id``) and
``meta_expressions/<split>/meta_expressions.json`` whose expressions carry one ``obj_id`` (a str).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import write_text

JPEG_DIR = "JPEGImages"
META_FILE = "meta_expressions.json"
MASK_FILE = "mask_dict.json"
ANNOTATIONS_DIR = "Annotations"  # Ref-YouTube-VOS
JPEG_QUALITY = 95

# BrokenVideos 4.1: the artifact regions and the normal regions are queried with these prompts.
EXPRESSIONS = {
    "artifact": "There's something uncanny in the video. The video suffers from visual artifacts.",
    "normal": "This video has no artifacts and everything is normal.",
}
# Stable ids: expression k of every video has exp_id str(k) and obj_id k; video i (in video-id
# order) has anno_id 2i + k, so every export of the same split has the same ids.
EXP_IDS = {name: str(k) for k, name in enumerate(EXPRESSIONS)}


def frame_stem(index: int) -> str:
    return f"{index:05d}"


def anno_id(video_index: int, expression: str) -> int:
    return len(EXPRESSIONS) * video_index + list(EXPRESSIONS).index(expression)


def write_compact_json(path, obj) -> None:
    # compact: a mask_dict of a full split is large, and its readers load it whole
    write_text(path, json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")


def write_jpeg(path, frame: np.ndarray) -> None:
    # 4:4:4 at high quality: the models see what the mp4 decodes to, not a second round of chroma loss
    Image.fromarray(frame).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def read_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file is missing")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read JSON ({exc})") from None


def read_meta_expressions(path) -> dict:
    """``videos`` of a meta_expressions.json, each checked for ``frames`` and ``expressions``."""
    doc = read_json(path)
    videos = doc.get("videos") if isinstance(doc, dict) else None
    if not isinstance(videos, dict):
        raise InputError(path, 'no "videos" mapping')
    for video, entry in videos.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("frames"), list) \
                or not isinstance(entry.get("expressions"), dict):
            raise InputError(path, f'video {video!r}: needs "frames" (list) and "expressions" (mapping)')
        for exp_id, exp in entry["expressions"].items():
            if not isinstance(exp, dict) or "exp" not in exp:
                raise InputError(path, f'video {video!r}, expression {exp_id!r}: needs "exp"')
    return videos


def expression_ids(expressions: dict, selector: str) -> list[str]:
    """The exp_ids ``selector`` names: an exp_id itself, or every expression whose text it is
    (case and spacing ignored, as the readers normalise the text)."""
    if selector in expressions:
        return [selector]
    norm = " ".join(selector.lower().split())
    return [k for k, e in expressions.items() if " ".join(str(e["exp"]).lower().split()) == norm]


def prediction_frame(root, video: str, exp_id: str, frame: str) -> Path:
    """Where the repositories write one predicted frame: ``<root>/<video>/<exp_id>/<frame>.png``."""
    return Path(root) / video / exp_id / f"{frame}.png"


def read_prediction_frame(path, size: tuple[int, int]) -> np.ndarray:
    """A predicted frame as a boolean H×W mask: 0/255 greyscale or an index PNG, non-zero = object."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            arr = np.array(img if img.mode in ("L", "P", "1", "I;16", "I") else img.convert("L"))
    except FileNotFoundError:
        raise InputError(path, "predicted frame is missing") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise InputError(path, f"cannot read predicted frame ({exc.__class__.__name__}: {exc})") from None
    if arr.shape != tuple(size):
        raise InputError(path, f"predicted frame is {arr.shape[1]}x{arr.shape[0]}, video is {size[1]}x{size[0]}")
    return arr > 0
