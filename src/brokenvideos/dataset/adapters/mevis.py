"""``mevis`` and ``refytvos``: referring-segmentation layouts (io/mevis.py), e.g. an
``export-mevis`` folder or a dataset prepared for SAMWISE, GLUS or VideoLISA.

- ``mevis``: the root is one split folder, ``JPEGImages/<video>/<frame>.jpg``,
  ``meta_expressions.json`` and (optional: MeViS's ``valid`` has none) ``mask_dict.json``;
- ``refytvos``: the root holds ``<split>/JPEGImages``, ``<split>/Annotations/<video>/<frame>.png``
  (pixel value = ``obj_id``) and ``meta_expressions/<split>/meta_expressions.json``; option ``split``.

The video is its JPEGImages frames folder. Its mask is the union of the objects of the
``expression`` option (an exp_id, or a text; default the paper's artifact prompt, which
``export-mevis`` writes); a video whose mask is non-empty is ``broken``, one without a matching
expression or masks gets the default label. Option ``generator`` (default: the dataset's name).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from brokenvideos.dataset.adapters.base import Adapter, Item
from brokenvideos.dataset.adapters.common import decode_rle
from brokenvideos.errors import InputError
from brokenvideos.io import mevis
from brokenvideos.io.masks import read_mask


class _ReferringAdapter(Adapter):
    options = {"expression": mevis.EXPRESSIONS["artifact"], "generator": None}

    def meta_path(self) -> Path:
        raise NotImplementedError

    def jpeg_root(self) -> Path:
        raise NotImplementedError

    def loader(self, video: str, exp_ids: list[str], entry: dict):
        raise NotImplementedError

    def items(self):
        self.require_root()
        meta_path = self.meta_path()
        videos = mevis.read_meta_expressions(meta_path)
        if not videos:
            raise InputError(meta_path, "no videos listed")
        selector = str(self.option("expression"))
        for video in sorted(videos):
            entry = videos[video]
            folder = self.jpeg_root() / video
            frames = [str(f) for f in entry["frames"]]
            if not frames:
                raise InputError(meta_path, f"video {video!r} lists no frames")
            if frames != sorted(frames):
                # the readers sort frame names and index masks by that order; ours reads by name too
                raise InputError(meta_path, f"video {video!r}: frames are not in name order")
            missing = next((folder / f"{f}.jpg" for f in frames if not (folder / f"{f}.jpg").is_file()), None)
            if missing is not None:
                raise InputError(missing, f"frame listed in {meta_path.name} is missing")
            extra = sorted({p.stem for p in folder.glob("*.jpg")} - set(frames))
            if extra:
                raise InputError(folder, f"{len(extra)} jpg not listed in {meta_path.name} (first: {extra[0]}.jpg)")
            exp_ids = mevis.expression_ids(entry["expressions"], selector)
            yield Item(key=video, video=folder, generator=str(self.option("generator") or self.name),
                       prompt_id=f"{self.name}-{video}",
                       masks=self.loader(video, exp_ids, entry) if exp_ids else None)


def _volume(binary: np.ndarray):
    return binary.astype(np.uint8), ({1: "artifact"} if binary.any() else {})


class MevisAdapter(_ReferringAdapter):
    format = "mevis"

    def meta_path(self) -> Path:
        return self.root / mevis.META_FILE

    def jpeg_root(self) -> Path:
        return self.root / mevis.JPEG_DIR

    @cached_property
    def mask_dict(self) -> dict:
        # loaded once: it is the split's every mask, and items() runs twice
        doc = mevis.read_json(self.root / mevis.MASK_FILE)
        if not isinstance(doc, dict):
            raise InputError(self.root / mevis.MASK_FILE, "not a mapping of anno_id to per-frame RLEs")
        return doc

    def loader(self, video, exp_ids, entry):
        if not (self.root / mevis.MASK_FILE).is_file():
            return None  # an unannotated split (MeViS valid): labels come from the default
        anno_ids = [str(a) for k in exp_ids for a in entry["expressions"][k].get("anno_id", [])]
        where = self.root / mevis.MASK_FILE

        def load(num_frames: int, size: tuple[int, int]):
            union = np.zeros((num_frames, *size), bool)
            for a in anno_ids:
                rles = self.mask_dict.get(a)
                if rles is None:
                    raise InputError(where, f"video {video!r}: anno_id {a} is not in {where.name}")
                if len(rles) != num_frames:
                    raise InputError(where, f"anno_id {a}: {len(rles)} frames, video {video!r} has {num_frames}")
                for t, rle in enumerate(rles):  # null: the object is not in that frame
                    union[t] |= decode_rle(rle, size, where)
            return _volume(union)
        return load


class RefYtvosAdapter(_ReferringAdapter):
    format = "refytvos"
    options = {**_ReferringAdapter.options, "split": "train"}

    def meta_path(self) -> Path:
        return self.root / "meta_expressions" / str(self.option("split")) / mevis.META_FILE

    def jpeg_root(self) -> Path:
        return self.root / str(self.option("split")) / mevis.JPEG_DIR

    def loader(self, video, exp_ids, entry):
        folder = self.root / str(self.option("split")) / mevis.ANNOTATIONS_DIR / video
        if not folder.is_dir():
            return None  # no annotations for this split
        try:
            obj_ids = sorted({int(entry["expressions"][k]["obj_id"]) for k in exp_ids})
        except (KeyError, TypeError, ValueError):
            raise InputError(self.meta_path(), f"video {video!r}: expressions {exp_ids} need an integer obj_id") from None
        frames = [str(f) for f in entry["frames"]]

        def load(num_frames: int, size: tuple[int, int]):
            if len(frames) != num_frames:
                raise InputError(folder, f"{len(frames)} frames listed, the video has {num_frames}")
            union = np.zeros((num_frames, *size), bool)
            for t, f in enumerate(frames):
                m = read_mask(folder / f"{f}.png")
                if m.shape != tuple(size):
                    raise InputError(folder / f"{f}.png", f"mask is {m.shape[1]}x{m.shape[0]}, video is {size[1]}x{size[0]}")
                union[t] = np.isin(m, obj_ids)
            return _volume(union)
        return load
