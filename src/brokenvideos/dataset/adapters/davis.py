"""``davis``: the DAVIS layout, frames and palette PNG annotations side by side::

    <root>/JPEGImages/480p/<video>/00000.jpg ...
    <root>/Annotations/480p/<video>/00000.png ...   (index PNG per frame, same names; optional)

``resolution`` names the middle folder (default ``480p``; ``""`` for none). Each video is its
frames folder, at ``fps`` (default 24); ``encode: true`` writes a lossless mp4 of it instead.
Annotation ids become instances (``unknown`` subcategory unless an ``instances.json`` sits beside
the PNGs); a video with a non-empty annotation is ``broken``. ``generator`` names the generator
(default: the dataset name).
"""

from __future__ import annotations

from brokenvideos.dataset.adapters.base import Adapter, Item
from brokenvideos.dataset.adapters.common import png_masks
from brokenvideos.errors import InputError
from brokenvideos.io.video import list_frames


class DavisAdapter(Adapter):
    format = "davis"
    options = {"resolution": "480p", "generator": None}

    def items(self):
        root = self.require_root()
        res = str(self.option("resolution") or "")
        images = root / "JPEGImages" / res if res else root / "JPEGImages"
        annotations = root / "Annotations" / res if res else root / "Annotations"
        if not images.is_dir():
            found = ", ".join(sorted(p.name for p in root.iterdir())[:8]) or "nothing"
            raise InputError(root, f"no {images.relative_to(root)}/ folder (the DAVIS layout); found {found}")
        folders = sorted(p for p in images.iterdir() if p.is_dir())
        if not folders:
            raise InputError(images, "no video folders")
        for folder in folders:
            stems = [f.stem for f in list_frames(folder)]
            ann = annotations / folder.name
            yield Item(key=folder.name, video=folder, generator=self.option("generator") or self.name,
                       masks=png_masks(ann, stems) if ann.is_dir() else None)
