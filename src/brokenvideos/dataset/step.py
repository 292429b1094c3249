"""`brokenvideos dataset`: merge shard manifests and annotations, validate, split, describe.

Outputs (all written only after every check passed, each atomically): videos.parquet,
splits.parquet, stats.json and figures/*.png under ``<results>/dataset``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from brokenvideos.config import load_config
from brokenvideos.dataset.splits import make_splits
from brokenvideos.dataset.stats import dataset_stats, write_figures
from brokenvideos.dataset.validate import validate_video
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.atomic import atomic_dir, sweep_temporaries, write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def merge_manifests(video_paths, annotation_paths, ingest_paths=(), allow_failures: int = 0):
    """(videos, failed): the good videos, and the generation failures the run tolerated."""
    videos = pd.concat([read_table(p, kind="videos") for p in video_paths], ignore_index=True)
    failed = pd.DataFrame(columns=["video_id", "error"])
    if "status" in videos:
        failed = videos[videos.status != "ok"][["video_id", "error"]].reset_index(drop=True)
        for r in failed.itertuples():
            log.warning("left out %s: generation failed (%s)", r.video_id, r.error)
        if len(failed) > allow_failures:
            raise BrokenVideosError(f"{failed.video_id[0]}: generation failed ({failed.error[0]}); {len(failed)} "
                                    f"failed videos in all, generate.allow_failures is {allow_failures}")
        videos = videos[videos.status == "ok"]
    if annotation_paths:
        ann = pd.concat([read_table(p, kind="annotations") for p in annotation_paths], ignore_index=True)
        for r in ann[ann.status == "error"].itertuples():
            log.warning("left out %s: annotation failed (%s)", r.video_id, r.error)
        ann = ann[ann.status == "ok"][["video_id", "mask_dir", "annotator"]]
        videos = videos.drop(columns=[c for c in ("mask_dir", "annotator") if c in videos]) \
            .merge(ann, on="video_id", how="inner")
    for p in ingest_paths:
        videos = pd.concat([videos, read_table(p, kind="videos")], ignore_index=True)
    dup = videos.video_id[videos.video_id.duplicated()]
    if len(dup):
        raise BrokenVideosError(f"duplicate video_id {dup.iloc[0]!r} across manifests")
    return videos.reset_index(drop=True), failed


def validate_all(videos: pd.DataFrame) -> pd.DataFrame:
    """Validate every video; report every bad one (one line each), then fail on the first."""
    facts, errors = [], []
    for row in tqdm(videos.to_dict("records"), desc="validate", unit="video"):
        try:
            facts.append(validate_video(row))
        except InputError as exc:
            errors.append(exc)
            log.error("%s", exc)
    if errors:
        raise BrokenVideosError(f"{len(errors)} invalid video(s); first: {errors[0]}")
    return pd.concat([videos.drop(columns=["num_instances"], errors="ignore"), pd.DataFrame(facts)], axis=1)


def build_dataset(cfg: dict, video_paths, annotation_paths, ingest_paths, out_dir) -> dict:
    paths = ResultPaths(cfg["results"])
    videos, failed = merge_manifests(video_paths, annotation_paths, ingest_paths,
                                     cfg["generate"]["allow_failures"])
    videos = validate_all(videos)
    splits = make_splits(videos, cfg["dataset"]["split"], cfg["seed"])
    prompts = read_table(paths.prompts, kind="prompts") if paths.prompts.exists() else None
    stats = dataset_stats(videos, prompts, splits)
    stats["generation_failures"] = {"count": int(len(failed)), "video_ids": sorted(failed.video_id)}
    out_dir = Path(out_dir)
    sweep_temporaries(out_dir, ("videos", "splits", "stats", "figures"))  # a killed run's leftovers
    write_table(videos, out_dir / "videos.parquet", kind="videos")
    write_table(splits, out_dir / "splits.parquet", kind="splits")
    write_json(out_dir / "stats.json", stats)
    with atomic_dir(out_dir / "figures") as tmp:
        write_figures(stats, tmp)
    log.info("dataset: %d videos %s; splits %s", len(videos), stats["labels"], stats["splits"])
    return stats


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--videos", nargs="+", required=True, help="shard manifests")
    p.add_argument("--annotations", nargs="*", default=[], help="annotation manifests")
    p.add_argument("--ingested", nargs="*", default=[], help="manifests written by `brokenvideos ingest`")
    p.add_argument("--out-dir", help="default: <results>/dataset")


def run(args) -> int:
    cfg = load_config(args.config)
    build_dataset(cfg, args.videos, args.annotations, args.ingested,
                  args.out_dir or ResultPaths(cfg["results"]).dataset_dir)
    return 0
