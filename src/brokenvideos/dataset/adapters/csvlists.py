"""``genvideo`` and ``d3``: detection sets listed in CSV files, one row per video, label 0 real / 1 fake.

- ``genvideo`` (DeMamba's GenVideo): CSV lists with a path column (``content_path``, ``path`` or
  ``video_path``) and ``label``. DeMamba's exact list format could not be confirmed; we assume
  these columns, paths relative to the root (absolute ones are used as they are), and labels
  ``0``/``1`` (``real``/``fake`` also accepted). The generator is a ``generator`` column if there
  is one, else the path's first folder (``Sora/x.mp4`` → ``Sora``), ``real`` for real videos.
- ``d3``: the same with ``content_path,label`` (D3's lists).
Lists: ``lists`` (a path or a list of paths, relative to the root) or every ``*.csv`` directly in
the root. Fake videos have no masks, so they get the default label (``normal``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from brokenvideos.dataset.adapters.base import Adapter, Item
from brokenvideos.errors import InputError

REAL, FAKE = {"0", "real"}, {"1", "fake"}


class ListAdapter(Adapter):
    path_columns: tuple[str, ...] = ("content_path", "path", "video_path")
    options = {"lists": None}

    def lists(self) -> list[Path]:
        given = self.option("lists")
        if given:
            paths = [self.root / p for p in ([given] if isinstance(given, str) else given)]
        else:
            paths = sorted(self.root.glob("*.csv"))
        if not paths:
            found = ", ".join(sorted(p.name for p in self.root.iterdir())[:8]) or "nothing"
            raise InputError(self.root, f"no CSV lists (expected *.csv in the root or lists: [...]); found {found}")
        return paths

    def rows(self, path: Path) -> list[tuple[int, str, str, str]]:
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(path, f"cannot read CSV list ({exc.__class__.__name__}: {exc})") from None
        column = next((c for c in self.path_columns if c in df.columns), None)
        if column is None or "label" not in df.columns:
            raise InputError(path, f"CSV list needs columns {'|'.join(self.path_columns)},label; has {list(df.columns)}")
        out = []
        for i, r in enumerate(df.to_dict("records"), 2):
            label = str(r["label"]).strip().lower()
            if label not in REAL | FAKE:
                raise InputError(path, f"row {i}: label {r['label']!r} is not 0/1 (real/fake)")
            out.append((i, r[column].strip(), "real" if label in REAL else "fake", r.get("generator", "").strip()))
        return out

    def items(self):
        self.require_root()
        seen: dict[str, str] = {}
        for lst in self.lists():
            for row, rel, kind, generator in self.rows(lst):
                if not rel:
                    raise InputError(lst, f"row {row}: empty path")
                key = str(PurePosixPath(rel).with_suffix("")).lstrip("/")
                if key in seen:
                    raise InputError(lst, f"row {row}: {rel} is listed twice (also {seen[key]})")
                seen[key] = f"{lst.name} row {row}"
                parts = PurePosixPath(rel).parts
                if kind == "real":
                    generator = "real"
                elif not generator:
                    generator = parts[0] if len(parts) > 1 and not PurePosixPath(rel).is_absolute() else self.name
                yield Item(key=key, video=self.root / rel, generator=generator,
                           label="real" if kind == "real" else None)


class GenVideoAdapter(ListAdapter):
    format = "genvideo"


class D3Adapter(ListAdapter):
    format = "d3"
    path_columns = ("content_path",)
