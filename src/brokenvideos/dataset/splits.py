"""Splits grouped by prompt (no prompt in two splits), stratified by label and generator.

Whole prompt groups are dealt to splits; within each stratum (the group's label mix and set of
generators) groups are shuffled by the run seed and allotted by largest remainder, so every
stratum is split in the requested proportions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from brokenvideos.config import derive_seed
from brokenvideos.errors import BrokenVideosError

SPLITS = ("train", "val", "test")
# BrokenVideos 4.1: 3,091 broken + 748 normal videos for training, 150 + 150 for validation.
PAPER_COUNTS = {"train": {"broken": 3091, "normal": 748}, "val": {"broken": 150, "normal": 150}}


def _group_table(videos: pd.DataFrame) -> pd.DataFrame:
    groups = videos.groupby("prompt_id", sort=True).agg(
        labels=("label", lambda s: "+".join(sorted(set(s) - {"real"})) or "real"),
        generators=("generator", lambda s: "+".join(sorted(set(s)))),
        n=("video_id", "size"),
    )
    groups["stratum"] = groups.labels + "|" + groups.generators
    return groups


def _largest_remainder(n: int, ratios: dict[str, float]) -> dict[str, int]:
    total = sum(ratios.values())
    exact = {k: n * v / total for k, v in ratios.items()}
    out = {k: int(np.floor(x)) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], SPLITS.index(k)))[: n - sum(out.values())]:
        out[k] += 1
    return out


def split_by_ratios(videos: pd.DataFrame, ratios: dict[str, float], seed: int) -> pd.DataFrame:
    ratios = {k: float(v) for k, v in ratios.items() if v}
    if not ratios or any(k not in SPLITS for k in ratios):
        raise BrokenVideosError(f"config: dataset.split: ratios must name some of {SPLITS}, got {ratios}")
    groups = _group_table(videos)
    assignment = {}
    for stratum, members in groups.groupby("stratum", sort=True):
        ids = members.index.to_numpy()
        ids = ids[np.random.default_rng(derive_seed(seed, "split", stratum)).permutation(len(ids))]
        start = 0
        for split, count in _largest_remainder(len(ids), ratios).items():
            assignment.update({pid: split for pid in ids[start:start + count]})
            start += count
    return _to_frame(videos, assignment)


def split_by_counts(videos: pd.DataFrame, counts: dict[str, dict[str, int]], seed: int) -> pd.DataFrame:
    """Deal prompt groups, in seeded order, to the split with the largest unmet need for the group's
    label; groups nobody needs are left out of every split (as the paper's subsets leave data out)."""
    groups = _group_table(videos)
    need = {s: dict(c) for s, c in counts.items()}
    order = groups.index.to_numpy()[np.random.default_rng(derive_seed(seed, "split-counts")).permutation(len(groups))]
    per_group = videos.groupby(["prompt_id", "label"]).size()
    assignment = {}
    for pid in order:
        have = per_group[pid].to_dict()
        best, best_need = None, 0
        for split in need:
            gain = sum(min(n, need[split].get(lbl, 0)) for lbl, n in have.items())
            if gain > best_need:
                best, best_need = split, gain
        if best is not None:
            assignment[pid] = best
            for lbl, n in have.items():
                if lbl in need[best]:
                    need[best][lbl] = max(0, need[best][lbl] - n)
    return _to_frame(videos, assignment)


def paper_counts(videos: pd.DataFrame) -> dict[str, dict[str, int]]:
    """The paper's split sizes scaled to this run's number of broken + normal videos."""
    available = int(videos.label.isin(["broken", "normal"]).sum())
    total = sum(sum(c.values()) for c in PAPER_COUNTS.values())
    return {s: {lbl: max(1, int(round(n * available / total))) for lbl, n in c.items()}
            for s, c in PAPER_COUNTS.items()}


def _to_frame(videos: pd.DataFrame, assignment: dict) -> pd.DataFrame:
    split = videos.prompt_id.map(assignment)
    out = pd.DataFrame({"video_id": videos.video_id, "split": split})
    return out.dropna().sort_values("video_id").reset_index(drop=True)


def make_splits(videos: pd.DataFrame, split_cfg: dict, seed: int) -> pd.DataFrame:
    by = split_cfg["by"]
    if by == "ratios":
        return split_by_ratios(videos, {k: split_cfg.get(k, 0) for k in SPLITS}, seed)
    if by == "counts":
        return split_by_counts(videos, {k: split_cfg[k] for k in SPLITS if k in split_cfg}, seed)
    return split_by_counts(videos, paper_counts(videos), seed)


LOCALIZATION_LABELS = ("broken", "normal")


def split_videos(videos_path, splits_path, split: str, labels=LOCALIZATION_LABELS) -> pd.DataFrame:
    """The rows of videos.parquet in ``split`` with one of ``labels``, sorted by video_id."""
    from brokenvideos.io.tables import read_table

    videos = read_table(videos_path, kind="videos")
    splits = read_table(splits_path, kind="splits")
    df = videos.merge(splits, on="video_id")
    return df[(df.split == split) & df.label.isin(labels)].sort_values("video_id").reset_index(drop=True)
