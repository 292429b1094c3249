"""``brokenvideos``: the released BrokenVideos set (Lin et al.), AI-generated videos with artifact masks.

Its public layout could not be confirmed, so both plausible ones are accepted:
- videos: video files anywhere under the root (``<root>/videos/Cog5B_00000.mp4``), or frames
  folders ``<root>/JPEGImages/<id>/<frame>.jpg`` when the root holds no video files;
- masks, either per-frame index PNGs ``<masks_dir>/<id>/<frame>.png`` (``masks_dir`` default
  ``<root>/masks``, optional ``instances.json``), or MeViS-style COCO RLE: ``<root>/mask_dict.json``
  (annotation id → one RLE or null per frame) + ``<root>/meta_expressions.json``
  (``videos.<id>.expressions.<n>.{exp, anno_id}``), one instance per expression.
A video without masks gets the default label. The generator comes from the id's prefix
(``Cog5B_00000`` → ``Cog5B``) through ``generators`` (config, merged over GENERATORS).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from brokenvideos.dataset.adapters.base import Adapter, Item
from brokenvideos.dataset.adapters.common import decode_rle, png_masks, read_json, video_files, videos_in
from brokenvideos.errors import InputError

# id prefix -> generator name. Our guesses from the paper and the project page, not a published
# list: override or extend with `generators: {prefix: name}`.
GENERATORS = {
    "Cog5B": "CogVideoX-5B", "Cog2B": "CogVideoX-2B", "CogVideoX": "CogVideoX", "Wan": "Wan2.1",
    "Hunyuan": "HunyuanVideo", "LTX": "LTX-Video", "Pika": "Pika", "Kling": "Kling", "Kling15": "Kling-1.5",
    "Sora": "Sora", "Gen3": "Runway-Gen3", "Luma": "Luma", "Luma16": "Luma-1.6",
    "EasyAnimate": "EasyAnimate-V4", "Qingying": "Qingying", "Vidu": "Vidu", "MiniMax": "MiniMax",
    "OpenSora": "OpenSora-1.2", "Tongyi": "Tongyi",
}
PREFIX = re.compile(r"^(?P<prefix>[A-Za-z0-9.]+?)[_-][A-Za-z0-9_-]+$")
RLE_FILES = ("mask_dict.json", "meta_expressions.json")


class BrokenVideosAdapter(Adapter):
    format = "brokenvideos"
    options = {"generators": {}, "masks_dir": None, "masks_layout": "auto"}

    def __init__(self, entry: dict):
        super().__init__(entry)
        self.generators = {**GENERATORS, **(self.option("generators") or {})}
        self._rle = None  # (meta, mask_dict), read once: pass 2 needs them again

    def _found(self) -> str:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in self.root.iterdir())
        return ", ".join(names[:8]) + (f", … ({len(names)} entries)" if len(names) > 8 else "") or "nothing"

    def _videos(self) -> dict[str, Path]:
        files = video_files(self.root)
        if not files and (self.root / "JPEGImages").is_dir():
            files = videos_in(self.root / "JPEGImages")
        if not files:
            raise InputError(self.root, "no videos (expected video files under the root or "
                                        f"JPEGImages/<id>/ frame folders); found {self._found()}")
        videos: dict[str, Path] = {}
        for f in files:
            key = f.stem if f.is_file() else f.name
            if key in videos:
                raise InputError(f, f"video id {key} also at {videos[key]}")
            videos[key] = f
        return videos

    def _layout(self) -> str:
        masks_dir = Path(self.option("masks_dir") or self.root / "masks")
        layout = self.option("masks_layout")
        has_png, has_rle = masks_dir.is_dir(), all((self.root / n).is_file() for n in RLE_FILES)
        if layout == "auto":
            layout = "png" if has_png else "rle" if has_rle else ""
        if layout not in ("png", "rle") or (layout == "png" and not has_png) or (layout == "rle" and not has_rle):
            raise InputError(self.root, f"no masks (expected {masks_dir}/<id>/<frame>.png or "
                                        f"{' + '.join(RLE_FILES)}); found {self._found()}")
        return layout

    def generator(self, key: str, path: Path) -> str:
        m = PREFIX.match(key)
        if not m:
            raise InputError(path, f"id {key!r} has no generator prefix (expected e.g. Cog5B_00000)")
        if m["prefix"] not in self.generators:
            raise InputError(path, f"unknown generator prefix {m['prefix']!r} (known: {', '.join(sorted(self.generators))}); "
                                   f"map it in generators: {{{m['prefix']}: <name>}}")
        return self.generators[m["prefix"]]

    def items(self):
        self.require_root()
        videos, layout = self._videos(), self._layout()
        if layout == "png":
            masks_dir = Path(self.option("masks_dir") or self.root / "masks")
            for key, path in videos.items():
                src = masks_dir / key
                yield Item(key=key, video=path, generator=self.generator(key, path),
                           masks=png_masks(src) if src.is_dir() else None)
            return
        meta, mask_dict = self._read_rle()
        for key, path in videos.items():
            entry = meta.get(key)
            yield Item(key=key, video=path, generator=self.generator(key, path),
                       text="; ".join(e.get("exp", "") for _, e in _expressions(entry)) if entry else "",
                       masks=self._rle_loader(key, entry, mask_dict) if entry else None)

    def _read_rle(self):
        if self._rle is None:
            path = self.root / "meta_expressions.json"
            meta = read_json(path)
            if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
                raise InputError(path, "expected {\"videos\": {<id>: {\"frames\": [...], \"expressions\": {...}}}}")
            self._rle = meta["videos"], read_json(self.root / "mask_dict.json")
        return self._rle

    def _rle_loader(self, key: str, entry: dict, mask_dict: dict):
        where = self.root / "mask_dict.json"

        def load(num_frames: int, size: tuple[int, int]):
            vol = np.zeros((num_frames, *size), np.uint8)
            instances = {}
            for k, (_, expr) in enumerate(_expressions(entry), 1):
                for anno in expr.get("anno_id", []):
                    frames = mask_dict.get(str(anno))
                    if frames is None:
                        raise InputError(where, f"video {key}: annotation {anno} is missing")
                    if len(frames) != num_frames:
                        raise InputError(where, f"video {key}: annotation {anno} has {len(frames)} frames, "
                                                f"video has {num_frames}")
                    for t, rle in enumerate(frames):
                        vol[t][decode_rle(rle, size, where)] = k
                instances[k] = "unknown"  # expressions are free text, not taxonomy subcategories
            return vol, {k: v for k, v in instances.items() if (vol == k).any()}
        return load


def _expressions(entry: dict):
    """A video's expressions in numeric order of their ids (JSON order is not relied on)."""
    exprs = entry.get("expressions") or {}
    return sorted(exprs.items(), key=lambda kv: (len(kv[0]), kv[0]))
