"""``aigvdet``: AIGVDet's class folders, ``0_real/`` and ``1_fake/``, holding video files or frames
folders, at the root or under per-generator (or per-split) folders::

    <root>/moonvalley/0_real/v1.mp4      <root>/moonvalley/1_fake/v2/00000.png ...

The generator is the folder above the class folder (``moonvalley``; the dataset name at the root);
real videos have generator ``real``. Fake videos have no masks: they get the default label.
"""

from __future__ import annotations

from brokenvideos.dataset.adapters.base import Adapter, Item
from brokenvideos.dataset.adapters.common import videos_in
from brokenvideos.errors import InputError

CLASSES = {"0_real": "real", "1_fake": "fake"}


class AIGVDetAdapter(Adapter):
    format = "aigvdet"
    options = {}

    def items(self):
        root = self.require_root()
        classes = sorted(p for p in root.rglob("*") if p.is_dir() and p.name in CLASSES)
        if not classes:
            found = ", ".join(sorted(p.name for p in root.iterdir())[:8]) or "nothing"
            raise InputError(root, f"no 0_real/ or 1_fake/ folders; found {found}")
        for folder in classes:
            parent = folder.parent.relative_to(root)
            real = CLASSES[folder.name] == "real"
            for video in videos_in(folder):
                rel = video.relative_to(root)
                yield Item(key=str(rel.with_suffix("") if video.is_file() else rel), video=video,
                           generator="real" if real else (parent.name if parent.parts else self.name),
                           label="real" if real else None)
