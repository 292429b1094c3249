#!/usr/bin/env python
"""Write data/example/: a tiny dataset in the generic ingest layout (videos, DAVIS masks, labels).

It is what `data.dvc` tracks, and the shape to copy when bringing your own data:
  data/example/videos/<name>.mp4, data/example/masks/<name>/<frame>.png, data/example/labels.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brokenvideos.generators import build_generator
from brokenvideos.io.atomic import write_text
from brokenvideos.io.masks import write_video_masks
from brokenvideos.io.video import write_video
from brokenvideos.prompts.step import make_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/example")
    args = ap.parse_args()
    out = Path(args.out)
    video_cfg = {"width": 96, "height": 64, "num_frames": 8, "fps": 8}
    prompts = make_prompts({"num_prompts": 4, "normal_fraction": 0.5}, run_seed=7).to_dict("records")
    gen = build_generator({"name": "example", "backend": "synthetic", "family": "smoother"}, video_cfg, 7)
    lines = ["video,label,generator,text"]
    for i, prompt in enumerate(prompts):
        v = gen.generate(prompt, seed=i)
        name = f"clip{i:02d}"
        write_video(out / "videos" / f"{name}.mp4", v.frames, v.fps)
        if v.masks is not None and v.masks.any():
            write_video_masks(out / "masks" / name, v.masks, v.instances)
        lines.append(f"{name},{v.label},example-smoother,\"{prompt['text']}\"")
    write_text(out / "labels.csv", "\n".join(lines) + "\n")
    print(f"wrote {len(prompts)} videos to {out}")


if __name__ == "__main__":
    main()
