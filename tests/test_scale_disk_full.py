"""A full disk during `generate` (issue 16, item 8): `results/` is a small tmpfs, mounted by the test
(as root). The step stops with one `error:` line naming the file it could not write; nothing
truncated is left for a re-run to trust; after the disk grows, the re-run resumes (it keeps what
was finished) and ends with the same bytes as a run that never ran out of space.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video, sha256_file

GENERATOR = "synth-upsampler"
# 12 videos of 128×96×12: about 20 KiB each, so a few hundred KiB in all.
CONFIG = {"prompts": {"num_prompts": 12, "normal_fraction": 0.25},
          "video": {"width": 128, "height": 96, "num_frames": 12, "fps": 6, "qp": 18},
          "generators": [{"name": GENERATOR, "backend": "synthetic", "family": "upsampler", "shards": 1}]}
PAGE = 4096

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")


def generate(workdir: Path):
    cfg = workdir / "config.yaml"
    return run_cli(["generate", "--config", cfg, "--generator", GENERATOR, "--shard", 0], cwd=workdir)


def files(results: Path) -> dict[str, bytes]:
    return {p.relative_to(results).as_posix(): p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


@pytest.fixture
def small_disk(tmp_path):
    """A factory: mount a tmpfs of ``size`` bytes at ``<dir>/results``; all are unmounted after."""
    mounted = []

    def mount(workdir: Path, size: int) -> Path:
        results = workdir / "results"
        results.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(results)], check=True)
        mounted.append(results)
        return results

    yield mount
    for results in mounted:
        subprocess.run(["umount", "-l", str(results)], check=False)


@needs_root
def test_a_full_disk_stops_generate_cleanly_and_the_rerun_resumes(tmp_path, small_disk):
    clean, full = tmp_path / "clean", tmp_path / "full"
    for d in (clean, full):
        write_config(d, **CONFIG)
    assert run_cli(["prompts", "--config", clean / "config.yaml"], cwd=clean).code == 0
    assert generate(clean).code == 0, "the clean run must not fail"
    want = files(clean / "results")
    videos = sorted(k for k in want if k.endswith(".mp4"))
    assert len(videos) == 12
    total = sum(len(v) for v in want.values())

    # room for the prompts and about half of the videos: tmpfs counts whole pages per file
    pages = sum(-(-len(v) // PAGE) for v in want.values())
    results = small_disk(full, PAGE * (pages // 2))
    assert run_cli(["prompts", "--config", full / "config.yaml"], cwd=full).code == 0
    first = generate(full)

    # one clear line, naming a file under results/, and a non-zero exit
    assert first.code != 0
    line = first.error
    assert "no space left on device" in line and "re-run" in line, line
    named = Path(line.split()[1].rstrip(":"))
    assert (full / named).resolve().is_relative_to(results.resolve()), line
    assert "Traceback" not in first.stderr, first.stderr[-2000:]

    # nothing half-written: no temporaries, no shard manifest, every video left is whole and is
    # the clean run's video; a video's record (what a re-run trusts) exists only beside its video
    got = files(results)
    assert not [k for k in got if Path(k).name.startswith((".tmp-", ".old-"))], sorted(got)
    assert f"videos/{GENERATOR}/shard-0.parquet" not in got
    left = [k for k in got if k.endswith(".mp4")]
    assert 0 < len(left) < len(videos), f"the disk should fill mid-shard: {len(left)} of {len(videos)} videos"
    for k in left:
        assert got[k] == want[k], f"{k} differs from the clean run's"
        assert read_video(results / k).shape[0] == CONFIG["video"]["num_frames"]
    for k in got:
        if k.endswith(".json") and k.startswith("videos/"):
            assert got[k] == want[k] and k.replace(".json", ".mp4") in got, k
    for k in got:
        if k.startswith("generated_masks/"):
            assert got[k] == want[k], k

    # the disk grows; the re-run keeps the finished videos and makes the rest
    subprocess.run(["mount", "-o", f"remount,size={4 * total + 2**20}", str(results)], check=True)
    second = generate(full)
    assert second.code == 0, second.stderr[-2000:]
    assert f"{len([k for k in left if k.replace('.mp4', '.json') in got])} already done" in second.stderr
    assert files(results) == want
    rows = read_table(results / "videos" / GENERATOR / "shard-0.parquet", kind="videos")
    assert all(sha256_file(results / "videos" / GENERATOR / Path(p).name) == s for p, s in zip(rows.path, rows.sha256))


@pytest.mark.parametrize("raised", [
    OSError(28, "No space left on device"),  # Python's and PIL's writes
    OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"),  # pyarrow's text
    RuntimeError("x.mp4: OSError: [Errno 28] No space left on device"),  # from the encoder process
])
def test_every_writers_disk_full_becomes_one_line_naming_the_file(tmp_path, raised):
    from brokenvideos.io.atomic import DiskFull, atomic_path

    target = tmp_path / "out" / "table.parquet"
    with pytest.raises(DiskFull) as caught:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise raised
    assert str(caught.value).startswith(f"{target}: no space left on device")
    assert list(target.parent.iterdir()) == []  # the partial temporary is gone


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    from brokenvideos.io.atomic import atomic_path

    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "t.json"):
            raise PermissionError(13, "Permission denied")


def test_a_folder_being_built_names_itself_not_its_temporary_file(tmp_path):
    from brokenvideos.io.atomic import DiskFull, atomic_dir, write_json

    target = tmp_path / "masks" / "video-1"
    with pytest.raises(DiskFull) as caught:
        with atomic_dir(target) as tmp:
            with pytest.MonkeyPatch.context() as mp:  # the sidecar's write runs out of space
                mp.setattr("os.fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
                write_json(tmp / "instances.json", {})
    assert str(caught.value).startswith(f"{target}: no space left on device")
    assert list(target.parent.iterdir()) == []
