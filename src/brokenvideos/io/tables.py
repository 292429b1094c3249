"""Parquet manifests: stable column order, sorted by id, written atomically.

pyarrow writes no timestamps into Parquet, so equal tables give equal bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_path

# Required columns per contract (docs/ARCHITECTURE.md); extra columns are allowed after them.
CONTRACTS: dict[str, list[str]] = {
    "prompts": ["prompt_id", "text", "category", "subcategory", "scene", "subject", "action", "seed"],
    "videos": ["video_id", "generator", "prompt_id", "path", "label", "fps", "num_frames", "width",
               "height", "sha256", "source"],
    "annotations": ["video_id", "mask_dir", "num_instances", "annotator"],
    "splits": ["video_id", "split"],
    "detections": ["video_id", "score", "label_pred"],
}
ID_COLUMN = {"prompts": "prompt_id", "videos": "video_id", "annotations": "video_id", "splits": "video_id",
             "detections": "video_id"}
LABELS = ("broken", "normal", "real")


def write_table(df: pd.DataFrame, path, kind: str | None = None) -> None:
    if kind is not None:
        missing = [c for c in CONTRACTS[kind] if c not in df.columns]
        if missing:
            raise ValueError(f"{kind} table lacks required columns {missing}")
        ordered = CONTRACTS[kind] + sorted(c for c in df.columns if c not in CONTRACTS[kind])
        df = df[ordered].sort_values(ID_COLUMN[kind], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    # pandas metadata embeds library versions; drop it so bytes depend on data alone.
    table = table.replace_schema_metadata(None)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path, kind: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "table is missing")
    try:
        df = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise InputError(path, f"cannot read Parquet table ({exc.__class__.__name__}: {exc})") from None
    if kind is not None:
        missing = [c for c in CONTRACTS[kind] if c not in df.columns]
        if missing:
            raise InputError(path, f"not a {kind} table: missing columns {missing}")
    return df
