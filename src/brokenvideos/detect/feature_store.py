"""The feature store: each video's frozen-backbone features, computed once per (video, backbone).

One directory per backbone (``paths.feature_store``)::

    store.json          backbone spec, revision (weights digest), feature kind, input size, dim
    videos/<id>.<sha>.npy   one video's features: (T, D) per frame, or (1, D) per clip; float32;
                            <sha> is the first 16 hex of the video file's sha256
    index.parquet       the videos of this run: video_id, video_sha256, file, rows, frames
    index.json          store.json + this run's counts and throughput (frames/s from the first
                        video's start to the last one's end, worker start-up excluded; seconds,
                        start-up included; written last: the rule's output)

A re-run, or a run resumed after a kill, encodes only the videos without a shard for their current
bytes; a shard is written atomically, so it is either whole or absent. When the backbone's revision
changes, the old shards are deleted first (one warning line): they describe other weights.

Encoding runs as a plain loop, as ``workers`` local processes (each with its share of the torch
threads), or, when ``detect.features.ray`` is set, as Ray Data ``map_batches`` over an actor pool,
one actor per GPU. Every protocol and detector reads the store; none runs the backbone.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.detect.data import load_frames
from brokenvideos.errors import InputError
from brokenvideos.io.atomic import atomic_path, sweep_temporaries, write_json
from brokenvideos.io.tables import read_table, write_table
from brokenvideos.io.video import sha256_file
from brokenvideos.paths import STORE_INDEX, STORE_INDEX_META

log = logging.getLogger(__name__)
IDENTITY = ("backbone", "revision", "feature", "input_size", "dim")
RAY_DEFAULTS = {"address": None, "num_workers": 1, "gpus_per_worker": 0, "cpus_per_worker": 1, "batch_size": 4}


def store_dir(path) -> Path:
    """The store for a path that names it or its index file."""
    path = Path(path)
    return path.parent if path.name in (STORE_INDEX, STORE_INDEX_META) else path


def index_path(store) -> Path:
    return store_dir(store) / STORE_INDEX


def index_meta_path(store) -> Path:
    return store_dir(store) / STORE_INDEX_META


def is_complete(path) -> bool:
    """Whether a store (or its index file) holds a finished run's index."""
    return index_meta_path(path).exists() and index_path(path).exists()


def store_meta(path) -> dict | None:
    """A finished store's index.json (backbone, revision, ...), or None."""
    return json.loads(index_meta_path(path).read_text()) if path and is_complete(path) else None


def shard_path(store, video_id: str, video_sha: str) -> Path:
    return store_dir(store) / "videos" / f"{video_id}.{video_sha[:16]}.npy"


def _identity(encoder, spec: str, input_size) -> dict:
    """``input_size`` as configured (None: the encoder's own), so detectors can match it to theirs."""
    from brokenvideos.models.frozen_encoders import revision

    size = [input_size, input_size] if isinstance(input_size, int) else (list(input_size) if input_size else None)
    return {"backbone": spec, "revision": revision(encoder), "feature": encoder.kind_of_feature,
            "input_size": size, "dim": int(encoder.dim)}


def open_store(store: Path, identity: dict) -> None:
    """Make the store this backbone's: keep its shards when the identity matches, else clear them."""
    meta_path = store / "store.json"
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except ValueError:
            old = {}
        if {k: old.get(k) for k in IDENTITY} != identity:
            log.warning("%s: made with %s@%s, now %s@%s: its %d shards are deleted", store, old.get("backbone"),
                        old.get("revision"), identity["backbone"], identity["revision"],
                        len(list((store / "videos").glob("*.npy"))))
            shutil.rmtree(store / "videos", ignore_errors=True)
    (store / "videos").mkdir(parents=True, exist_ok=True)
    # a killed run's half-written shards and index (one job writes a store at a time)
    sweep_temporaries(store / "videos")
    sweep_temporaries(store, ("store", "index"))
    write_json(meta_path, identity)


def save_shard(path: Path, features: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(features, dtype=np.float32))


def encode_rows(encoder, jobs: list[dict]) -> list[dict]:
    """Encode each job's video into its shard; a video that cannot be read is skipped with one line."""
    done = []
    for job in jobs:
        start = time.time()  # wall clock: comparable across worker processes and Ray actors
        try:
            frames = load_frames(job["path"], 1)
        except InputError as exc:
            log.warning("skipped: %s", exc)
            continue
        save_shard(Path(job["shard"]), encoder.encode_video(frames))
        done.append({"video_id": job["video_id"], "frames": len(frames), "start": start, "end": time.time()})
    return done


# --- local worker processes: each loads the encoder once ---
_WORKER = {}


def _init_worker(spec, input_size, threads: int) -> None:
    import torch

    from brokenvideos.models.frozen_encoders import frozen_encoder

    torch.set_num_threads(max(1, threads))
    _WORKER["encoder"] = frozen_encoder(spec, input_size)


def _worker_encode(job: dict) -> list[dict]:
    return encode_rows(_WORKER["encoder"], [job])


class RayEncoder:
    """A Ray Data actor: the encoder on this actor's device, writing shards to the shared store."""

    def __init__(self, spec, input_size, threads: int):
        import torch

        from brokenvideos.models.frozen_encoders import frozen_encoder

        # Ray reserves num_cpus for the actor but torch would still start a thread per core: with
        # two actors on 2 cores each ran 2 threads (oversubscribed, and not the 1-thread bytes)
        torch.set_num_threads(max(1, threads))
        self.encoder = frozen_encoder(spec, input_size)
        if torch.cuda.is_available():
            self.encoder.cuda()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(encode_rows(self.encoder, batch.to_dict("records")),
                            columns=["video_id", "frames", "start", "end"])


def _run_local(encoder, jobs, spec, input_size, workers: int, threads: int) -> list[dict]:
    import torch

    if workers <= 1 or len(jobs) <= 1:
        done, saved = [], torch.get_num_threads()
        torch.set_num_threads(threads or saved)
        try:
            for i, job in enumerate(jobs, 1):
                done += encode_rows(encoder, [job])
                if i % 20 == 0 or i == len(jobs):
                    log.info("encoded %d/%d videos", i, len(jobs))
        finally:
            torch.set_num_threads(saved)
        return done
    per_worker = max(1, (threads or torch.get_num_threads()) // workers)
    done = []
    # spawn: a forked child would inherit torch's thread pool in an undefined state
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(spec, input_size, per_worker)) as pool:
        for i, out in enumerate(pool.map(_worker_encode, jobs), 1):
            done += out
            if i % 20 == 0 or i == len(jobs):
                log.info("encoded %d/%d videos (%d workers)", i, len(jobs), workers)
    return done


def _run_ray(jobs, spec, input_size, ray_cfg: dict) -> list[dict]:
    import ray.data

    from brokenvideos.train.step import ensure_ray

    ray_cfg = {**RAY_DEFAULTS, **ray_cfg}
    # a private cluster gets one CPU more than the actors: Ray Data's own tasks need one to run on
    ensure_ray({**ray_cfg, "num_workers": 1, "cpus_per_worker": ray_cfg["num_workers"] * ray_cfg["cpus_per_worker"] + 1})
    ds = ray.data.from_items(jobs, override_num_blocks=len(jobs))  # a block per video: actors share the work
    actor_kwargs = {"spec": spec, "input_size": input_size, "threads": int(ray_cfg["cpus_per_worker"])}
    out = ds.map_batches(RayEncoder, fn_constructor_kwargs=actor_kwargs,
                         batch_size=ray_cfg["batch_size"], batch_format="pandas",
                         compute=ray.data.ActorPoolStrategy(size=ray_cfg["num_workers"]),
                         num_gpus=ray_cfg["gpus_per_worker"], num_cpus=ray_cfg["cpus_per_worker"])
    return out.take_all()


def build_store(rows, spec: str, input_size, store, workers: int = 1, threads: int = 0,
                ray_cfg: dict | None = None) -> dict:
    """Encode what the store lacks for ``rows`` (splits records), then write its index. Returns index.json."""
    from brokenvideos.models.frozen_encoders import frozen_encoder

    t0 = time.perf_counter()
    store = store_dir(store)
    encoder = frozen_encoder(spec, input_size)  # fails at once, before any video, if missing
    identity = _identity(encoder, spec, input_size)
    open_store(store, identity)
    listed, jobs = [], []
    for row in sorted(rows, key=lambda r: r["video_id"]):
        try:
            sha = sha256_file(row["path"])
        except OSError:
            log.warning("skipped: %s: cannot be read", row["path"])
            continue
        shard = shard_path(store, row["video_id"], sha)
        listed.append({"video_id": row["video_id"], "video_sha256": sha, "file": f"videos/{shard.name}",
                       "frames": int(row.get("num_frames") or 0)})
        if not shard.exists():
            jobs.append({"video_id": row["video_id"], "path": str(row["path"]), "shard": str(shard)})
    log.info("%s (%s): %d videos, %d already in the store, %d to encode", spec, identity["revision"],
             len(listed), len(listed) - len(jobs), len(jobs))
    if ray_cfg and jobs:
        done = _run_ray(jobs, spec, input_size, ray_cfg)
    else:
        done = _run_local(encoder, jobs, spec, input_size, workers, threads)
    frames = int(sum(d["frames"] for d in done))
    # from the first video's start to the last one's end, in whichever worker: start-up excluded
    span = max(d["end"] for d in done) - min(d["start"] for d in done) if done else 0.0
    return write_index(store, identity, listed, {
        "encoded": len(done), "reused": len(listed) - len(jobs), "workers": "ray" if ray_cfg else workers,
        "frames_encoded": frames, "frames_per_s": frames / span if span > 0 else None,
        "seconds": time.perf_counter() - t0})


def write_index(store, identity: dict, listed: list[dict], run: dict) -> dict:
    store = store_dir(store)
    index = pd.DataFrame(listed, columns=["video_id", "video_sha256", "file", "frames"])
    present = [(store / f).exists() for f in index.file]  # a skipped (unreadable) video has no shard
    index = index[present].reset_index(drop=True)
    index["rows"] = [int(np.load(store / f, mmap_mode="r").shape[0]) for f in index.file]
    meta = {**identity, "encoder": identity["backbone"], "videos": len(index), "frames": int(index.frames.sum()), **run}
    write_table(index, index_path(store))
    write_json(index_meta_path(store), meta)  # last: the rule's output is complete once this exists
    return meta


def write_store(store, identity: dict, features: dict[str, np.ndarray]) -> dict:
    """A store from features in hand (tests, imported features): one shard per video, then the index."""
    store = store_dir(store)
    open_store(store, identity)
    listed = []
    for video_id, arr in sorted(features.items()):
        sha = _digest(arr)  # no video file: the features' own bytes name the shard
        path = shard_path(store, video_id, sha)
        save_shard(path, arr)
        listed.append({"video_id": video_id, "video_sha256": sha, "file": f"videos/{path.name}", "frames": len(arr)})
    return write_index(store, identity, listed, {"encoded": len(listed), "reused": 0, "workers": 0})


def _digest(arr: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(arr, np.float32).tobytes()).hexdigest()


def read_store(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(index.json, {video_id: features}) of a complete store."""
    store = store_dir(path)
    if not is_complete(store):
        raise InputError(store, "feature store is missing or incomplete (no index): run detect-features")
    meta = store_meta(store)
    index = read_table(index_path(store))
    out = {}
    for video_id, file in zip(index.video_id, index.file):
        try:
            out[str(video_id)] = np.load(store / file)
        except (OSError, ValueError) as exc:
            raise InputError(store / file, f"feature shard cannot be read ({exc.__class__.__name__}): "
                                           f"delete it and re-run detect-features") from None
    return meta, out
