"""`brokenvideos ingest`: an existing dataset on disk enters the same videos manifest.

Its layout is named by ``--format`` (``dataset.ingest[].format``); each format is an adapter in
``dataset/adapters/`` that only lists the videos (``Item``s). This step does the rest, in two passes
so memory stays bounded by one video whatever the dataset's size:

1. check every item: decode the video, load its masks and check them against the video's frame
   count and size, settle its label; the mask volumes are dropped straight away;
2. write the masks video by video (each an atomic folder swap), then the manifest.

``--on-error stop`` (default): the first bad file stops the step with one line naming it, before
anything is written. ``--on-error skip``: bad items are logged and left out, the good ones are
ingested, the rejects table (``path, reason``) is written beside the manifest, and the step still
fails (non-zero exit) so a rejected file is never silently lost. A bad *layout* (an adapter's own
InputError: an unreadable labels CSV, no videos at all) stops the step in both modes.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from brokenvideos.dataset.adapters import ADAPTERS, build_adapter
from brokenvideos.dataset.adapters.base import Item, safe_id
from brokenvideos.errors import BrokenVideosError, InputError
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.tables import LABELS, write_table
from brokenvideos.io.video import probe_video, read_video, sha256_file, write_video
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)
LOSSLESS_QP = 0  # `encode: true`: frames folders become mp4 at x264's lossless quantizer


def rejects_path(out) -> Path:
    """The rejects table of a manifest: ``<stem>.rejects.parquet`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.rejects.parquet")


def encoded_path(results, name: str, key: str) -> Path:
    return ResultPaths(results).ingest_dir / name / "videos" / f"{safe_id(key)}.mp4"


def _check(item: Item, name: str, default_label: str, fps, encode: bool) -> dict:
    """Pass 1 for one item: the manifest row it will get; raises InputError naming the bad file."""
    video = Path(item.video)
    info = probe_video(video, fps=fps)
    if item.label is not None and item.label not in LABELS:
        raise InputError(item.video, f"unknown label {item.label!r} (expected one of {', '.join(LABELS)})")
    ids: list[int] = []
    if item.masks is not None:
        vol, _ = _load_masks(item, info)
        ids = sorted(set(np.unique(vol).tolist()) - {0})
        del vol  # nothing of a volume outlives its check
    label = item.label or ("broken" if ids else default_label)
    if label == "broken" and item.masks is None:
        raise InputError(item.video, "labelled broken but has no masks")
    if label != "broken" and ids:
        raise InputError(item.video, f"labelled {label} but its masks have ids {ids}")
    if encode and video.is_dir() and (info["width"] % 2 or info["height"] % 2):
        raise InputError(item.video, f"cannot encode {info['width']}x{info['height']} frames to H.264 4:2:0 "
                                     "(odd size); ingest without encode")
    return {
        "video_id": f"{name}-{safe_id(item.key)}", "generator": item.generator,
        "prompt_id": item.prompt_id or f"{name}-{safe_id(item.key)}",
        "path": str(item.video), "label": label, "fps": info["fps"], "num_frames": info["num_frames"],
        "width": info["width"], "height": info["height"], "sha256": sha256_file(video),
        "source": f"ingest:{name}", "text": item.text, "num_instances": len(ids),
    }


def _load_masks(item: Item, info: dict) -> tuple[np.ndarray, dict[int, str]]:
    shape = (info["num_frames"], info["height"], info["width"])
    vol, instances = item.masks(info["num_frames"], shape[1:])
    if vol.shape != shape:
        raise InputError(item.video, f"masks are {vol.shape[0]}×{vol.shape[2]}x{vol.shape[1]}, "
                                     f"video is {shape[0]}×{shape[2]}x{shape[1]}")
    return vol.astype(np.uint8, copy=False), instances


def ingest(entry: dict, out, results="results", on_error: str | None = None) -> pd.DataFrame:
    """Ingest one ``dataset.ingest[]`` entry into the manifest ``out`` and masks under ``results``."""
    adapter = build_adapter(entry)
    name, on_error = adapter.name, on_error or adapter.option("on_error")
    default_label, fps, encode = adapter.option("default_label"), adapter.option("fps"), bool(adapter.option("encode"))
    if on_error not in ("stop", "skip"):
        raise BrokenVideosError(f"--on-error {on_error!r}: use stop or skip")

    rows: dict[str, dict] = {}  # item key -> row; the only state kept across the passes
    rejects: list[dict] = []
    rejected: set[str] = set()
    for item in tqdm(adapter.items(), desc=f"check {name}", unit="video"):
        if item.key in rows:
            raise InputError(item.video, f"two videos have the key {item.key!r}")
        try:
            rows[item.key] = _check(item, name, default_label, fps, encode)
        except InputError as exc:
            if on_error == "stop":
                raise
            log.warning("rejected %s: %s", exc.path, exc.problem)
            rejects.append({"path": exc.path, "reason": exc.problem})
            rejected.add(item.key)
    if not rows and not rejects:
        raise InputError(adapter.root, f"the {adapter.format} layout lists no videos")
    if not rows:  # everything rejected: the list of why is the step's whole output
        write_table(pd.DataFrame(rejects, columns=["path", "reason"]), rejects_path(out))
        raise BrokenVideosError(f"{out}: all {len(rejects)} videos rejected, listed in {rejects_path(out)}")
    if len({r["video_id"] for r in rows.values()}) < len(rows):
        raise InputError(adapter.root, "two keys give the same video id once made file-safe")

    paths = ResultPaths(results)
    done = set()
    for item in tqdm(adapter.items(), desc=f"write {name}", unit="video"):
        if item.key in rejected:
            continue
        row = rows.get(item.key)
        if row is None or item.key in done:
            raise BrokenVideosError(f"{adapter.root}: the {adapter.format} adapter listed other videos on its second pass")
        if item.masks is not None:
            vol, instances = _load_masks(item, row)
            ids = sorted(set(np.unique(vol).tolist()) - {0})
            instances = instances or {k: "unknown" for k in ids}
        else:  # unannotated normal or real videos get all-zero masks
            vol, instances = np.zeros((row["num_frames"], row["height"], row["width"]), np.uint8), {}
        write_video_masks(paths.masks(row["video_id"]), vol, instances, {"annotation.json": {"annotator": "import"}})
        del vol
        if encode and Path(item.video).is_dir():
            mp4 = encoded_path(results, name, item.key)
            rate = max(1, round(row["fps"]))  # mp4 timestamps here are whole frames per second
            write_video(mp4, read_video(item.video), fps=rate, qp=LOSSLESS_QP)
            row.update(path=str(mp4), sha256=sha256_file(mp4), fps=float(rate), source_frames=str(item.video))
        row.update(mask_dir=str(paths.masks(row["video_id"])), annotator="import")
        done.add(item.key)
    if done != set(rows):
        raise BrokenVideosError(f"{adapter.root}: the {adapter.format} adapter listed other videos on its second pass")

    df = pd.DataFrame(list(rows.values()))
    if "source_frames" in df:
        df["source_frames"] = df["source_frames"].fillna("")
    write_table(df, out, kind="videos")
    write_table(pd.DataFrame(rejects, columns=["path", "reason"]), rejects_path(out))
    log.info("ingested %d videos from %s into %s (%s)", len(df), adapter.root, out, df.label.value_counts().to_dict())
    if rejects:
        raise BrokenVideosError(f"{out}: {len(rejects)} of {len(rejects) + len(df)} videos rejected, "
                                f"listed in {rejects_path(out)}")
    return df


# ---- CLI -------------------------------------------------------------------------------------------

def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise BrokenVideosError(f"--option {text!r}: use KEY=VALUE (VALUE in YAML, e.g. generators='{{Cog5B: CogVideoX-5B}}')")
    return key.replace("-", "_"), yaml.safe_load(value)


def add_arguments(p) -> None:
    p.add_argument("--root", required=True, help="folder of the dataset")
    p.add_argument("--name", required=True, help="dataset name, prefixes video ids")
    p.add_argument("--out", required=True, help="manifest to write (videos contract)")
    p.add_argument("--results", default="results", help="results root (masks go to <results>/masks)")
    p.add_argument("--format", default="folder", choices=sorted(ADAPTERS), help="layout of the dataset (default folder)")
    p.add_argument("--on-error", choices=("stop", "skip"),
                   help="stop (default): first bad file fails the step, nothing written; skip: ingest the "
                        "rest, list the bad ones in <out stem>.rejects.parquet, exit non-zero")
    p.add_argument("--labels-csv", help="folder: CSV of video,label[,generator,prompt_id,text]")
    p.add_argument("--masks-dir", help="folder/brokenvideos: masks as <masks_dir>/<video>/<frame>.png")
    p.add_argument("--default-label", choices=LABELS, help="label of a video without masks or label (default normal)")
    p.add_argument("--fps", type=float, help="frame rate of frames folders (default 24)")
    p.add_argument("--encode", action="store_true", help="encode frames folders to lossless mp4 under "
                                                         "<results>/ingest/<name>/videos/")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other option of the format (VALUE in YAML), as in dataset.ingest[] config")


def entry_from_args(args) -> dict:
    entry = {"name": args.name, "root": args.root, "format": args.format}
    for key in ("labels_csv", "masks_dir", "default_label", "fps"):
        if getattr(args, key) is not None:
            entry[key] = getattr(args, key)
    if args.encode:
        entry["encode"] = True
    entry.update(_option(text) for text in args.option)
    return entry


def run(args) -> int:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
        raise BrokenVideosError(f"--name {args.name!r}: use letters, digits, '_', '.', '-'")
    ingest(entry_from_args(args), args.out, args.results, args.on_error)
    return 0
