"""The robustness phase (He et al. Table II; localizers on lossy copies): the lossy copies it tests
on, the tables it builds from the evaluation contracts, and its place in the DAG."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brokenvideos.degrade.ops import payload_ranges
from brokenvideos.degrade.videos_step import degrade_videos
from brokenvideos.io.atomic import write_json
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video, sha256_file, write_video
from brokenvideos.paths import ResultPaths
from brokenvideos.report.robustness import _ordered, detect_table2, localize_table
from conftest import job_counts, run_snakemake, write_config


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two 12-frame clips as rows of the videos contract."""
    root = tmp_path_factory.mktemp("rob")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(2):
        frames = rng.integers(0, 255, (12, 64, 96, 3), dtype=np.uint8)
        path = root / f"v{i}.mp4"
        write_video(path, frames, fps=8, qp=18)
        rows.append({"video_id": f"v{i}", "generator": "g", "prompt_id": f"p{i}", "path": str(path), "label": "broken",
                     "fps": 8, "num_frames": 12, "width": 96, "height": 64, "sha256": sha256_file(path),
                     "source": "test"})
    return root, pd.DataFrame(rows)


def cfg_for(root, intervals=(3000, 2000, 1000)):
    return {"seed": 3, "results": str(root / "results"), "robustness": {"bit_error_intervals": list(intervals)}}


def test_bit_error_copies_follow_the_configured_interval_and_keep_the_contract(videos):
    root, rows = videos
    cfg = cfg_for(root)
    out = degrade_videos(cfg, rows, "bit-error", 2)
    paths = ResultPaths(cfg["results"])
    table = read_table(paths.degraded_videos_table("bit-error-2"), kind="videos")
    assert list(table.video_id) == ["v0", "v1"]
    for src, row in zip(rows.itertuples(), table.itertuples()):
        payload = sum(b - a for a, b in payload_ranges(src.path))
        assert row.degrade_flipped_bits == payload // 2000 > 0  # the level-2 interval of the config
        assert row.path == str(paths.degraded_video("bit-error-2", src.video_id))
        assert row.sha256 == sha256_file(row.path) != src.sha256
        assert row.source == "degrade:bit-error:2"
        assert read_video(row.path).shape == (12, 64, 96, 3)  # every frame still decodes
    assert out.degrade_frames_decoded.tolist() == [12, 12]


def test_rerun_keeps_finished_copies_and_their_bytes(videos):
    root, rows = videos
    cfg = cfg_for(root)
    degrade_videos(cfg, rows, "crf", 3)
    paths = ResultPaths(cfg["results"])
    video = paths.degraded_video("crf-3", "v0")
    before = (video.stat().st_mtime_ns, sha256_file(video))
    paths.degraded_video("crf-3", "v1").unlink()  # as if killed before v1's record... and its mp4
    paths.degraded_record("crf-3", "v1").unlink()
    table = degrade_videos(cfg, rows, "crf", 3)
    assert (video.stat().st_mtime_ns, sha256_file(video)) == before  # v0 was not re-encoded
    assert table.sha256.tolist() == [sha256_file(p) for p in table.path]
    assert json.loads(paths.degraded_record("crf-3", "v1").read_text())["op"] == "crf"


def test_a_new_bit_error_rate_remakes_the_copies(videos):
    root, rows = videos
    first = degrade_videos(cfg_for(root), rows, "bit-error", 1)
    again = degrade_videos(cfg_for(root, intervals=(1500, 2000, 1000)), rows, "bit-error", 1)
    assert (again.degrade_flipped_bits == first.degrade_flipped_bits * 2).all()  # not the old copies
    assert again.sha256.tolist() != first.sha256.tolist()


def test_operations_are_in_the_papers_row_order():
    assert _ordered(["crf-1", "abr-3", "bit-error-2", "abr-1"]) == [("bit-error", 2), ("abr", 1), ("abr", 3),
                                                                     ("crf", 1)]


def _metrics(directory, accuracies):
    for (train, test), acc in accuracies.items():
        write_json(directory / train / test / "metrics.json", {"accuracy_clip": acc})


def test_table2_cells_are_mean_clip_accuracy_over_every_pair(tmp_path):
    cfg = {"results": str(tmp_path), "detect": {"detectors": {"td": {"label": "Ours"}, "npr": {"label": "NPR"}}},
           "robustness": {"detectors": ["npr", "td"], "operations": ["crf-3", "bit-error-1"]},
           "train": {"localizers": [{"name": "m"}]}}
    paths = ResultPaths(tmp_path)
    clean = {("a", "a"): 0.9, ("a", "b"): 0.5, ("b", "a"): 0.6, ("b", "b"): 0.8}
    _metrics(paths.detect_eval_dir("td"), clean)
    _metrics(paths.detect_eval_dir("npr"), {k: 0.5 for k in clean})
    for ol, shift in (("crf-3", 0.2), ("bit-error-1", 0.1)):
        _metrics(paths.robustness_detect_dir(ol) / "eval" / "td", {k: v - shift for k, v in clean.items()})
        _metrics(paths.robustness_detect_dir(ol) / "eval" / "npr", {k: 0.5 for k in clean})
    t = detect_table2(cfg)
    assert t.columns.tolist() == ["Lossy operation", "Level", "NPR", "Ours"]
    assert t["Lossy operation"].tolist() == ["Raw Data", "Bit Error", "H.265 CRF"]
    assert t.Ours.tolist() == [70.0, 60.0, 50.0]  # (0.9 + 0.5 + 0.6 + 0.8) / 4 = 0.70, then -0.1, -0.2
    assert t.NPR.tolist() == [50.0, 50.0, 50.0]


def test_localizer_table_reports_the_change_from_the_clean_row(tmp_path):
    cfg = {"results": str(tmp_path), "robustness": {"operations": ["abr-1"]},
           "train": {"localizers": [{"name": "m"}]}}
    paths = ResultPaths(tmp_path)
    write_json(paths.metrics_summary("m", "final"), {"broken": {"J&F": 0.64}})
    write_json(paths.robustness_localize_dir("abr-1") / "m" / "metrics" / "summary.json", {"broken": {"J&F": 0.6}})
    t = localize_table(cfg)
    assert t["m J&F"].tolist() == [0.64, 0.6]
    assert t["m change"].tolist() == [0.0, pytest.approx(-0.04)]


def test_dag_has_one_job_per_operation_and_none_when_off(tmp_path):
    write_config(tmp_path, robustness={"operations": ["abr-1", "bit-error-3"]})
    proc = run_snakemake(tmp_path, "-n")
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout + proc.stderr)
    assert {r: counts.get(r) for r in ("degrade_videos", "detect_robustness", "localize_robustness",
                                       "robustness_tables")} == {"degrade_videos": 2, "detect_robustness": 2,
                                                                 "localize_robustness": 2, "robustness_tables": 1}
    off = tmp_path / "off"
    write_config(off, robustness={"operations": []})
    proc = run_snakemake(off, "-n")
    assert proc.returncode == 0, proc.stderr
    assert not {"degrade_videos", "robustness_tables"} & set(job_counts(proc.stdout + proc.stderr))
