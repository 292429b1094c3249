"""Dataset statistics in the shape of BrokenVideos Section 3.3, as JSON and figures."""

from __future__ import annotations

import json

import pandas as pd

from brokenvideos.prompts.taxonomy import REGION_BUCKETS, region_bucket


def _shares(series: pd.Series) -> dict[str, float]:
    counts = series.value_counts()
    return {str(k): round(float(v) / len(series), 4) for k, v in counts.sort_index().items()} if len(series) else {}


def dataset_stats(videos: pd.DataFrame, prompts: pd.DataFrame | None, splits: pd.DataFrame) -> dict:
    broken = videos[videos.label == "broken"]
    buckets = [region_bucket(n) for n in broken.num_instances]
    merged = videos.merge(prompts[["prompt_id", "scene", "category", "subcategory"]], on="prompt_id", how="left") \
        if prompts is not None else videos.assign(scene="unknown", category="unknown", subcategory="unknown")
    merged = merged.fillna({"scene": "unknown", "category": "unknown", "subcategory": "unknown"})
    subcats = []
    for s in broken.get("instance_subcategories", pd.Series(dtype=str)).dropna():
        subcats += list(json.loads(s).values())
    with_splits = videos.merge(splits, on="video_id", how="left").fillna({"split": "unassigned"})
    return {
        "num_videos": int(len(videos)),
        "num_frames_total": int(videos.num_frames.sum()),
        "num_artifact_regions": int(broken.num_instances.sum()),
        "labels": {k: int(v) for k, v in videos.label.value_counts().sort_index().items()},
        "generators": {k: int(v) for k, v in videos.generator.value_counts().sort_index().items()},
        "label_by_generator": {g: {k: int(v) for k, v in d.label.value_counts().sort_index().items()}
                               for g, d in videos.groupby("generator")},
        "splits": {s: {k: int(v) for k, v in d.label.value_counts().sort_index().items()}
                   for s, d in with_splits.groupby("split")},
        # Section 3.3: 80 % of videos have 1–2 regions, 17 % 3–6, 3 % 7–10.
        "regions_per_broken_video": _shares(pd.Series(buckets, dtype=str)),
        "region_buckets_paper": {f"{b['min']}-{b['max']}": b["weight"] for b in REGION_BUCKETS},
        "scene_shares": _shares(merged.scene),
        "category_shares_broken": _shares(merged[merged.label == "broken"].category),
        "instance_subcategory_shares": _shares(pd.Series(subcats, dtype=str)),
        "resolutions": {k: int(v) for k, v in (videos.width.astype(str) + "x" + videos.height.astype(str))
                        .value_counts().sort_index().items()},
        "frames_per_video": {"min": int(videos.num_frames.min()), "max": int(videos.num_frames.max()),
                             "mean": round(float(videos.num_frames.mean()), 2)},
        "mask_coverage_broken": round(float(broken.mask_pixels.sum() /
                                            max(1, (broken.num_frames * broken.width * broken.height).sum())), 4),
    }


def write_figures(stats: dict, out_dir) -> list:
    """One PNG per statistic; Agg backend so it runs headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    specs = [
        ("regions_per_video.png", "Artifact regions per broken video",
         {"this run": stats["regions_per_broken_video"], "BrokenVideos": stats["region_buckets_paper"]}),
        ("scenes.png", "Scene categories", {"this run": stats["scene_shares"]}),
        ("categories.png", "Artifact categories (broken videos)", {"this run": stats["category_shares_broken"]}),
        ("labels_by_generator.png", "Videos per generator and label", None),
        ("splits.png", "Videos per split and label", None),
    ]
    written = []
    for name, title, series in specs:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        if series is not None:
            keys = sorted(set().union(*[s.keys() for s in series.values()]))
            width = 0.8 / len(series)
            for i, (label, s) in enumerate(series.items()):
                ax.bar([k + i * width for k in range(len(keys))], [s.get(k, 0) for k in keys], width, label=label)
            ax.set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(keys))], keys, rotation=30, ha="right")
            ax.set_ylabel("share")
            if len(series) > 1:
                ax.legend()
        else:
            table = stats["label_by_generator" if "generator" in name else "splits"]
            frame = pd.DataFrame(table).T.fillna(0)
            frame.plot.bar(stacked=True, ax=ax, rot=30)
            ax.set_ylabel("videos")
        ax.set_title(title)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written
