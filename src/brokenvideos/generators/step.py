"""`brokenvideos generate`: one shard of one generator → mp4s, emitted masks, a shard manifest.

A shard is every k-th prompt, so shards of similar cost run in parallel under ``snakemake -j``.
Resumable: each finished video leaves a sidecar record (written last, atomically) holding its
manifest row and mp4 hash; a re-run reuses every video whose record and hash still agree.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from brokenvideos.config import derive_seed, load_config
from brokenvideos.errors import BrokenVideosError
from brokenvideos.generators import build_generator
from brokenvideos.generators.base import is_oom
from brokenvideos.io.atomic import sweep_temporaries, write_json
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.io.video import sha256_file, write_video
from brokenvideos.paths import ResultPaths

log = logging.getLogger(__name__)


def generator_config(cfg: dict, name: str) -> dict:
    for g in cfg["generators"]:
        if g["name"] == name:
            return g
    raise BrokenVideosError(f"config: generators: no generator named {name!r} "
                            f"(have {[g['name'] for g in cfg['generators']]})")


def shard_prompts(prompts: pd.DataFrame, gen_cfg: dict, shard: int) -> pd.DataFrame:
    num_shards = gen_cfg.get("shards", 1)
    if not 0 <= shard < num_shards:
        raise BrokenVideosError(f"shard {shard} out of range: generator {gen_cfg['name']} has {num_shards} shards")
    which = gen_cfg.get("prompts", "all")
    if which != "all":
        prompts = prompts[prompts.label == which]
    prompts = prompts.sort_values("prompt_id").reset_index(drop=True)
    return prompts.iloc[shard::num_shards]


def pin_pixel_threads() -> None:
    """One thread for OpenCV and BLAS in this process. The renderer's maths is integer and exact
    anyway (generators/synthetic/exact.py); this keeps any float path that remains (drawing, Canny)
    from depending on how work is split across threads."""
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(limits=1)


def _load_record(record_path: Path, video_path: Path) -> dict | None:
    """The finished row for this video, or None if it must be (re)generated."""
    if not (record_path.exists() and video_path.exists()):
        return None
    try:
        row = json.loads(record_path.read_text())
    except json.JSONDecodeError:
        return None
    if row.get("status") != "ok" or sha256_file(video_path) != row.get("sha256"):
        return None
    return row


def run_shard(cfg: dict, gen_name: str, shard: int, prompts_path, out_path) -> pd.DataFrame:
    paths = ResultPaths(cfg["results"])
    gen_cfg = generator_config(cfg, gen_name)
    prompts = shard_prompts(read_table(prompts_path, kind="prompts"), gen_cfg, shard)
    video_dir = paths.video_dir(gen_name)
    video_ids = [f"{gen_name}-{pid}" for pid in prompts.prompt_id]
    # Sibling shards write into the same folders at the same time: sweep only this shard's leftovers.
    sweep_temporaries(video_dir, video_ids)
    sweep_temporaries(paths.generated_masks_root, video_ids)
    generator = build_generator(gen_cfg, cfg["video"], cfg["seed"])
    if generator.backend == "synthetic":
        pin_pixel_threads()
    rows, todo = [], []
    for prompt in prompts.to_dict("records"):
        video_id = f"{gen_name}-{prompt['prompt_id']}"
        record = _load_record(video_dir / f"{video_id}.json", paths.video(gen_name, video_id))
        if record is not None:
            rows.append(record)
        else:
            todo.append((video_id, prompt))
    log.info("%s shard %d: %d prompts, %d already done, %d to generate",
             gen_name, shard, len(prompts), len(rows), len(todo))
    allowed = cfg["generate"]["allow_failures"]
    batch = max(1, generator.batch_size())
    with tqdm(total=len(todo), desc=f"generate {gen_name}/{shard}", unit="video") as bar:
        for i in range(0, len(todo), batch):
            chunk = todo[i:i + batch]
            seeds = [derive_seed(cfg["seed"], gen_name, prompt["prompt_id"]) for _, prompt in chunk]
            results = generator.generate_batch([p for _, p in chunk], seeds)
            for (video_id, prompt), seed, result in zip(chunk, seeds, results):
                row = _finish_video(paths, generator, gen_cfg, video_id, prompt, seed, result, cfg)
                rows.append(row)
                bar.update(1)
                if row["status"] != "ok":
                    _check_failure(row, result, rows, allowed)
    df = pd.DataFrame(rows)
    failed = df[df.status != "ok"]
    if len(failed) > allowed:  # only out-of-memory failures get here: the shard went on
        r = failed.iloc[0]
        raise BrokenVideosError(f"{r.video_id}: generation failed: {r.error} ({len(failed)} failed videos "
                                f"in this shard, generate.allow_failures is {allowed})")
    write_table(df, out_path, kind="videos")
    log.info("wrote %s: %d ok, %d failed", out_path, (df.status == "ok").sum(), len(failed))
    return df


def _check_failure(row: dict, exc: Exception, rows: list[dict], allowed: int) -> None:
    """A failed video stops the shard at once unless it is out of memory (the shard goes on and is
    judged at its end) or the run tolerates it (``generate.allow_failures``)."""
    n_failed = sum(r["status"] != "ok" for r in rows)
    log.error("%s: generation failed: %s", row["video_id"], row["error"])
    if is_oom(exc) or n_failed <= allowed:
        return
    raise BrokenVideosError(f"{row['video_id']}: generation failed: {row['error']} "
                            f"(generate.allow_failures is {allowed})") from exc


def _finish_video(paths, generator, gen_cfg, video_id, prompt, seed, result, cfg) -> dict:
    v = cfg["video"]
    video_path = paths.video(gen_cfg["name"], video_id)
    row = {
        "video_id": video_id, "generator": gen_cfg["name"], "prompt_id": prompt["prompt_id"],
        "path": str(video_path), "label": prompt["label"], "fps": float(v["fps"]), "num_frames": 0,
        "width": 0, "height": 0, "sha256": "", "source": f"generated:{generator.backend}",
        "seed": int(seed), "status": "ok", "error": "", "generated_mask_dir": "", "num_instances": 0,
        "generator_params": json.dumps(generator.describe(), sort_keys=True),
    }
    if isinstance(result, Exception):
        row.update(status="error", error=f"{result.__class__.__name__}: {result}".splitlines()[0])
        return row  # no record: a failed video is retried on the next run
    frames = result.frames
    write_video(video_path, frames, result.fps, qp=v["qp"])
    row.update(label=result.label, fps=float(result.fps), num_frames=int(frames.shape[0]),
               height=int(frames.shape[1]), width=int(frames.shape[2]), sha256=sha256_file(video_path),
               video_params=json.dumps(result.params, sort_keys=True, default=str))
    if result.masks is not None:
        mask_dir = paths.generated_masks(video_id)
        write_video_masks(mask_dir, result.masks, result.instances)
        row.update(generated_mask_dir=str(mask_dir), num_instances=len(result.instances))
    write_json(video_path.with_suffix(".json"), row)
    return row


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--generator", required=True, help="a generators[].name from the config")
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--prompts", help="default: <results>/prompts/prompts.parquet")
    p.add_argument("--out", help="default: <results>/videos/<generator>/shard-<k>.parquet")


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    run_shard(cfg, args.generator, args.shard, args.prompts or paths.prompts,
              args.out or paths.shard_manifest(args.generator, args.shard))
    return 0
