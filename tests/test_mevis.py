"""The MeViS layout: export-mevis, import-predictions, the mevis/refytvos ingest adapters and the
evaluate.external wiring into Table 2.

The round trip is read back by a reader written here to MeViS's published field names (not the
package's io/mevis.py), with pycocotools decoding, as SAMWISE, GLUS and VideoLISA read it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from brokenvideos.io.masks import read_video_masks
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video
from conftest import job_counts, run_cli, run_pipeline, run_snakemake, write_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")  # numpy 2 copy= notice

ARTIFACT = "There's something uncanny in the video. The video suffers from visual artifacts."
NORMAL = "This video has no artifacts and everything is normal."


# two generated families, no real videos (export-mevis leaves them out), half the prompts in val
SMALL = {"generators": [{"name": "synth-upsampler", "backend": "synthetic", "family": "upsampler"},
                        {"name": "synth-grainy", "backend": "synthetic", "family": "grainy"}],
         "dataset": {"split": {"by": "ratios", "train": 0.5, "val": 0.5, "test": 0.0}}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny dataset (prompts → generate → annotate → dataset, in-process) and a second config of
    the same results with evaluate.normal_target full."""
    workdir = tmp_path_factory.mktemp("mevis")
    run_pipeline(write_config(workdir, **SMALL))
    write_config(workdir, name="full.yaml", evaluate={"normal_target": "full"}, **SMALL)
    return workdir


def split_rows(workdir: Path, split: str) -> pd.DataFrame:
    videos = read_table(workdir / "results/dataset/videos.parquet")
    splits = read_table(workdir / "results/dataset/splits.parquet")
    df = videos.merge(splits, on="video_id")
    return df[(df.split == split) & df.label.isin(["broken", "normal"])].sort_values("video_id")


def export(workdir: Path, config: str, split: str, out: str) -> Path:
    result = run_cli(["export-mevis", "--config", config, "--split", split, "--out", out], cwd=workdir)
    assert result.code == 0, result.stderr
    return workdir / out


# --- a reader to MeViS's field names, independent of the package ------------------------------------

def read_mevis(folder: Path) -> dict:
    """{video: {exp text: T×H×W bool}} and the frame names, as MeViS's loaders read a split."""
    meta = json.loads((folder / "meta_expressions.json").read_text())["videos"]
    mask_dict = json.loads((folder / "mask_dict.json").read_text())
    out = {}
    for video, v in meta.items():
        frames = sorted(v["frames"])
        images = [folder / "JPEGImages" / video / f"{f}.jpg" for f in frames]
        h, w = np.array(Image.open(images[0])).shape[:2]
        exps = {}
        for exp_id, e in v["expressions"].items():
            vol = np.zeros((len(frames), h, w), np.uint8)
            for a in [str(x) for x in e["anno_id"]]:
                for t in range(len(frames)):
                    if mask_dict[a][t] is not None:
                        vol[t] += coco_mask.decode(mask_dict[a][t])
            exps[e["exp"]] = {"exp_id": exp_id, "mask": vol > 0, "obj_id": [int(x) for x in e["obj_id"]]}
        out[video] = {"frames": frames, "images": images, "expressions": exps}
    return out


@pytest.mark.parametrize("config,normal_target", [("config.yaml", "empty"), ("full.yaml", "full")])
def test_export_round_trips_bit_for_bit(dataset, config, normal_target):
    folder = export(dataset, config, "val", f"mevis-{normal_target}/valid")
    got = read_mevis(folder)
    rows = split_rows(dataset, "val")
    assert sorted(got) == rows.video_id.tolist() and len(rows) >= 4
    assert set(rows.label) == {"broken", "normal"}
    anno_ids = set()
    for row in rows.itertuples():
        v = got[row.video_id]
        assert v["frames"] == [f"{t:05d}" for t in range(row.num_frames)]
        ours = read_video_masks(dataset / row.mask_dir, row.num_frames, (row.height, row.width)) > 0
        assert set(v["expressions"]) == {ARTIFACT, NORMAL}
        art, nor = v["expressions"][ARTIFACT], v["expressions"][NORMAL]
        assert (art["exp_id"], nor["exp_id"], art["obj_id"], nor["obj_id"]) == ("0", "1", [0], [1])
        assert np.array_equal(art["mask"], ours)  # bit for bit
        assert art["mask"].any() == (row.label == "broken")
        assert np.array_equal(nor["mask"], ~ours if normal_target == "full" else np.zeros_like(ours))
        # the frames are the mp4's, through a high-quality JPEG
        frames = read_video(dataset / row.path).astype(int)
        jpegs = np.stack([np.array(Image.open(p)) for p in v["images"]]).astype(int)
        assert jpegs.shape == frames.shape and np.abs(jpegs - frames).mean() < 2.0
    meta = json.loads((folder / "meta_expressions.json").read_text())["videos"]
    for i, video in enumerate(sorted(meta)):  # anno ids follow video-id order: stable across exports
        anno_ids |= {a for e in meta[video]["expressions"].values() for a in e["anno_id"]}
        assert [e["anno_id"] for e in meta[video]["expressions"].values()] == [[2 * i], [2 * i + 1]]
    assert sorted(json.loads((folder / "mask_dict.json").read_text())) == sorted(str(a) for a in anno_ids)
    again = export(dataset, config, "val", f"mevis-{normal_target}/again")
    for name in ("meta_expressions.json", "mask_dict.json"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def write_model_output(export_dir: Path, out: Path) -> Path:
    """What a model that is always right writes: 0/255 PNGs <out>/<video>/<exp_id>/<frame>.png."""
    for video, v in read_mevis(export_dir).items():
        for e in v["expressions"].values():
            d = out / video / e["exp_id"]
            d.mkdir(parents=True)
            for name, m in zip(v["frames"], e["mask"]):
                Image.fromarray(m.astype(np.uint8) * 255, mode="L").save(d / f"{name}.png")
    return out


@pytest.fixture(scope="module")
def model_output(dataset):
    return {target: write_model_output(export(dataset, cfg, "val", f"perfect-{target}/valid"),
                                       dataset / f"perfect-{target}-out")
            for cfg, target in (("config.yaml", "empty"), ("full.yaml", "full"))}


def import_and_evaluate(workdir, config, pred_in, name, *extra) -> tuple[pd.DataFrame, dict]:
    out = f"results/predictions/{name}/final"
    r = run_cli(["import-predictions", "--format", "mevis", "--in", pred_in, "--name", name, "--config", config,
                 "--split", "val", "--finetuned", *extra], cwd=workdir)
    assert r.code == 0, r.stderr
    r = run_cli(["evaluate", "--config", config, "--pred-dir", out, "--split", "val", "--out-dir", f"m/{name}"], cwd=workdir)
    assert r.code == 0, r.stderr
    return read_table(workdir / out / "predictions.parquet"), json.loads((workdir / f"m/{name}/summary.json").read_text())


@pytest.mark.parametrize("config,target,exp", [("config.yaml", "empty", "artifact"), ("full.yaml", "full", "artifact"),
                                               ("full.yaml", "full", "label"), ("full.yaml", "full", "normal")])
def test_perfect_model_output_scores_one_on_every_video(dataset, model_output, config, target, exp):
    name = f"perfect_{target}_{exp}"
    preds, summary = import_and_evaluate(dataset, config, model_output[target], name, "--exp", exp)
    rows = split_rows(dataset, "val")
    assert preds.video_id.tolist() == rows.video_id.tolist()
    assert (preds.label_pred == rows.label.to_numpy()).all()
    per_video = read_table(dataset / f"m/{name}/per_video.parquet")
    assert len(per_video) == len(rows) and (per_video.JF == 1.0).all() and (per_video.J == 1.0).all()
    assert summary["all"]["J&F"] == 1.0 and summary["normal_target"] == target
    for row in rows.itertuples():  # the imported masks are our masks (id 1 = artifact)
        ours = read_video_masks(dataset / row.mask_dir, row.num_frames, (row.height, row.width)) > 0
        imported = read_video_masks(dataset / f"results/predictions/{name}/final/{row.video_id}")
        assert np.array_equal(imported, ours.astype(np.uint8))


@pytest.mark.parametrize("damage,what", [("video", "prediction video is missing"),
                                         ("frame", "predicted frame is missing"),
                                         ("expression", "expression 0 (artifact prompt) is missing")])
def test_missing_input_is_one_line_naming_the_path(dataset, model_output, tmp_path, damage, what):
    broken = tmp_path / "out"
    shutil.copytree(model_output["empty"], broken)
    video = sorted(p.name for p in broken.iterdir())[1]
    victim = {"video": broken / video, "expression": broken / video / "0",
              "frame": broken / video / "0" / "00003.png"}[damage]
    shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
    out = tmp_path / "pred"
    r = run_cli(["import-predictions", "--format", "mevis", "--in", broken, "--name", "x", "--config", "config.yaml",
                 "--split", "val", "--out-dir", out], cwd=dataset)
    assert r.code == 2
    assert r.error == f"error: {victim}: {what}" + (" (expected <in>/<video>/<exp_id>/<frame>.png)" if damage == "video"
                                                    else " (the video has 6 frames)" if damage == "frame"
                                                    else " for this video")
    assert not out.exists()  # checked before anything is written


def test_wrong_size_frame_names_the_file(dataset, model_output, tmp_path):
    broken = tmp_path / "out"
    shutil.copytree(model_output["empty"], broken)
    frame = sorted(broken.glob("*/0/00002.png"))[0]
    Image.fromarray(np.zeros((10, 12), np.uint8), mode="L").save(frame)
    r = run_cli(["import-predictions", "--in", broken, "--name", "x", "--config", "config.yaml",
                 "--out-dir", tmp_path / "pred"], cwd=dataset)
    assert r.code == 2 and r.error == f"error: {frame}: predicted frame is 12x10, video is 64x48"


# --- ingest adapters -----------------------------------------------------------------------------------

def test_mevis_adapter_ingests_an_export(dataset, tmp_path):
    from brokenvideos.dataset.ingest import ingest

    folder = export(dataset, "full.yaml", "val", "mevis-ingest/valid")
    manifest = ingest({"name": "mv", "root": str(folder), "format": "mevis", "generator": "exported"},
                      tmp_path / "mv.parquet", results=tmp_path / "results")
    rows = split_rows(dataset, "val").set_index("video_id")
    assert manifest.video_id.tolist() == [f"mv-{v}" for v in rows.index]
    assert manifest.label.tolist() == rows.label.tolist() and set(manifest.generator) == {"exported"}
    for m in manifest.itertuples():
        src = rows.loc[m.video_id[len("mv-"):]]
        assert (m.num_frames, m.width, m.height) == (src.num_frames, src.width, src.height)
        ours = read_video_masks(dataset / src.mask_dir, src.num_frames, (src.height, src.width)) > 0
        assert np.array_equal(read_video_masks(m.mask_dir) > 0, ours)
    # the same folder through the CLI, with the normal prompt as the expression: broken ⇔ normal region
    r = run_cli(["ingest", "--root", folder, "--name", "mvn", "--format", "mevis", "--out", tmp_path / "n.parquet",
                 "--results", tmp_path / "results", "--option", f"expression={NORMAL}"])
    assert r.code == 0, r.stderr
    assert (read_table(tmp_path / "n.parquet").label == "broken").all()  # the complement is never empty


def test_mevis_adapter_bad_layout_names_the_file(dataset, tmp_path):
    from brokenvideos.dataset.ingest import ingest

    folder = tmp_path / "valid"
    shutil.copytree(export(dataset, "config.yaml", "val", "mevis-bad/valid"), folder)
    video = sorted(p.name for p in (folder / "JPEGImages").iterdir())[0]
    missing = folder / "JPEGImages" / video / "00004.jpg"
    missing.unlink()
    with pytest.raises(Exception) as exc:
        ingest({"name": "bad", "root": str(folder), "format": "mevis"}, tmp_path / "bad.parquet", results=tmp_path / "r")
    assert str(exc.value) == f"{missing}: frame listed in meta_expressions.json is missing"
    shutil.copy2(folder / "JPEGImages" / video / "00003.jpg", missing)
    mask_dict = json.loads((folder / "mask_dict.json").read_text())
    del mask_dict["0"]
    (folder / "mask_dict.json").write_text(json.dumps(mask_dict))
    r = run_cli(["ingest", "--root", folder, "--name", "bad", "--format", "mevis", "--out", tmp_path / "bad.parquet",
                 "--results", tmp_path / "r"])
    assert r.code == 2 and r.error == f"error: {folder / 'mask_dict.json'}: video {video!r}: anno_id 0 is not in mask_dict.json"
    assert not (tmp_path / "bad.parquet").exists()


def test_refytvos_adapter(tmp_path):
    from brokenvideos.dataset.ingest import ingest
    from brokenvideos.io.masks import write_mask

    root, rng = tmp_path / "ytvos", np.random.default_rng(0)
    meta = {}
    truth = {}
    for k, video in enumerate(["a1", "b2"]):
        frames = [f"{5 * t:05d}" for t in range(4)]
        (root / "train/JPEGImages" / video).mkdir(parents=True)
        (root / "train/Annotations" / video).mkdir(parents=True)
        vol = np.zeros((4, 16, 24), np.uint8)
        if k == 0:
            vol[:, 2:8, 3:9] = 2  # object 2 is the artifact, object 1 something else
            vol[:, 10:14, 12:20] = 1
        for t, f in enumerate(frames):
            Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(root / "train/JPEGImages" / video / f"{f}.jpg")
            write_mask(root / "train/Annotations" / video / f"{f}.png", vol[t])
        truth[video] = vol == 2
        meta[video] = {"frames": frames, "expressions": {"0": {"exp": "a dog", "obj_id": "1"},
                                                         "1": {"exp": ARTIFACT, "obj_id": "2"}}}
    (root / "meta_expressions/train").mkdir(parents=True)
    (root / "meta_expressions/train/meta_expressions.json").write_text(json.dumps({"videos": meta}))
    df = ingest({"name": "yt", "root": str(root), "format": "refytvos"}, tmp_path / "yt.parquet", results=tmp_path / "r")
    assert df.label.tolist() == ["broken", "normal"] and df.num_frames.tolist() == [4, 4]
    for row in df.itertuples():
        assert np.array_equal(read_video_masks(row.mask_dir) > 0, truth[row.video_id[len("yt-"):]])
    (root / "train/Annotations/a1/00010.png").unlink()
    with pytest.raises(Exception) as exc:
        ingest({"name": "yt", "root": str(root), "format": "refytvos"}, tmp_path / "yt2.parquet", results=tmp_path / "r")
    assert str(exc.value) == f"{root / 'train/Annotations/a1/00010.png'}: mask file is missing"


# --- config and workflow ------------------------------------------------------------------------------

def test_external_rows_in_the_dry_run(tmp_path):
    (tmp_path / "samwise_out").mkdir()
    (tmp_path / "glus_out").mkdir()
    external = [{"name": "SAMWISE", "dir": "samwise_out", "finetuned": True},
                {"name": "GLUS", "dir": "glus_out", "exp": "label"}]
    write_config(tmp_path, evaluate={"external": external})
    with_ext = run_snakemake(tmp_path, "-n", "-p", "tables")
    assert with_ext.returncode == 0, with_ext.stderr[-3000:]
    out = with_ext.stdout + with_ext.stderr
    counts = job_counts(out)
    # one localizer (2 rows) and two baselines as without external (tests/test_workflow.py), plus 2 rows
    assert (counts["predict_localizer"], counts["predict_baseline"]) == (2, 2)
    assert counts["import_predictions"] == 2 and counts["evaluate_predictions"] == 2 + 2 + 2
    assert ("import-predictions --config $BROKENVIDEOS_CONFIG --format mevis --in samwise_out --name SAMWISE "
            "--split val --exp artifact --out-dir results/predictions/SAMWISE/final") in out
    assert "--in glus_out --name GLUS --split val --exp label --out-dir results/predictions/GLUS/initial" in out
    # Table 2 rows after the localizer's two, before the baselines
    entries = [line for line in out.splitlines() if " tables --config" in line][0]
    methods = [e.split()[0] for e in entries.split("--entry ")[1:]]
    assert methods[:4] == ["st_unet", "st_unet", "SAMWISE", "GLUS"]
    assert "--entry SAMWISE yes results/metrics/SAMWISE/final" in entries
    assert "--entry GLUS no results/metrics/GLUS/initial" in entries


def test_external_schema_defaults_and_checks(tmp_path):
    from brokenvideos.config import load_config

    cfg = load_config(write_config(tmp_path, evaluate={"external": [{"name": "VideoLISA", "dir": "v"}]}))
    assert cfg["evaluate"]["external"] == [{"name": "VideoLISA", "dir": "v", "finetuned": False, "exp": "artifact"}]
    assert load_config(write_config(tmp_path / "d"))["evaluate"]["external"] == []
    r = run_cli(["export-mevis", "--config", write_config(tmp_path / "bad", evaluate={"external": [{"name": "x"}]}),
                 "--split", "val", "--out", tmp_path / "o"])
    assert r.code == 2 and "external" in r.error and "'dir' is a required property" in r.error


def test_schema_enums_are_the_code_lists():
    import yaml

    from brokenvideos.models.import_predictions import QUERIES
    from conftest import REPO

    schema = yaml.safe_load((REPO / "src/brokenvideos/schemas/config.schema.yaml").read_text())
    item = schema["properties"]["evaluate"]["properties"]["external"]["items"]
    assert item["properties"]["exp"]["enum"] == list(QUERIES)
