"""The generate rule runs a diffusers text-to-video pipeline end to end through Snakemake,
offline, loading a tiny random-weight pipeline through the same from_pretrained path a real
checkpoint takes; the manifest then holds everything needed to regenerate each video."""

from __future__ import annotations

import json
import pytest

from brokenvideos.generators import build_generator
from brokenvideos.generators.diffusers_backend import config_from_params
from brokenvideos.io.tables import read_table
from brokenvideos.io.video import read_video, sha256_file, write_video
from conftest import run_snakemake, write_config
from fixtures.tiny_t2v import build_tiny_t2v


@pytest.mark.slow
def test_generate_rule_with_a_diffusers_pipeline(tmp_path, monkeypatch):
    model_dir = build_tiny_t2v(tmp_path / "tiny_t2v")
    workdir = tmp_path / "run"
    write_config(workdir, prompts={"num_prompts": 3, "normal_fraction": 0.34},
                 generators=[{"name": "tiny-t2v", "backend": "diffusers", "model": str(model_dir), "shards": 1,
                              "num_inference_steps": 2, "guidance_scale": 7.5, "num_frames": 4, "fps": 4,
                              "height": 32, "width": 32, "batch_size": 2, "dtype": "float32", "device": "cpu"}])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = run_snakemake(workdir, "-j1", "generate_all", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    manifest = read_table(workdir / "results/videos/tiny-t2v/shard-0.parquet", kind="videos")
    assert len(manifest) == 3 and (manifest.status == "ok").all()
    assert (manifest.generated_mask_dir == "").all()  # masks come from the annotate step
    for path in manifest.path:
        assert read_video(workdir / path).shape == (4, 32, 32, 3)

    # Regenerate from the manifest alone and re-encode: the same mp4 bytes as the shard wrote.
    # (Batched rows are exact only at the same batch size; the third prompt ran alone.)
    row = next(r for r in manifest.itertuples() if json.loads(r.video_params)["batch_len"] == 1)
    params = json.loads(row.video_params)
    assert params["seed"] == row.seed and params["model"] == str(model_dir)
    prompts = read_table(workdir / "results/prompts/prompts.parquet", kind="prompts").set_index("prompt_id")
    prompt = prompts.loc[row.prompt_id].to_dict() | {"prompt_id": row.prompt_id}
    again = build_generator(config_from_params(params), {"width": 32, "height": 32, "num_frames": 4, "fps": 4}, 0)
    regenerated = again.generate_batch([prompt], [int(row.seed)])[0]
    assert not isinstance(regenerated, Exception), regenerated
    write_video(tmp_path / "again.mp4", regenerated.frames, regenerated.fps)
    assert sha256_file(tmp_path / "again.mp4") == row.sha256
