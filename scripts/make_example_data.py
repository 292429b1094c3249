#!/usr/bin/env python
"""Write data/example/: a tiny dataset in the generic ingest layout (videos, DAVIS masks, labels).

It is what `data.dvc` tracks, and the shape to copy when bringing your own data:
  data/example/videos/<name>.mp4, data/example/masks/<name>/<frame>.png, data/example/labels.csv
The bytes depend on nothing but this script (synthetic generator, constant-quantizer encoder), so
`make example-data` on a fresh clone gives exactly what `data.dvc` records, no DVC remote needed
(tests/test_ingest_readme.py checks the hash). The folder is built aside and swapped in whole, so
no file of an earlier version is left behind to change the hash.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brokenvideos.generators import build_generator
from brokenvideos.io.atomic import atomic_dir, write_text
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
    with atomic_dir(out) as tmp:
        for i, prompt in enumerate(prompts):
            v = gen.generate(prompt, seed=i)
            name = f"clip{i:02d}"
            write_video(tmp / "videos" / f"{name}.mp4", v.frames, v.fps)
            if v.masks is not None and v.masks.any():
                write_video_masks(tmp / "masks" / name, v.masks, v.instances)
            lines.append(f"{name},{v.label},example-smoother,\"{prompt['text']}\"")
        write_text(tmp / "labels.csv", "\n".join(lines) + "\n")
    print(f"wrote {len(prompts)} videos to {out}")


if __name__ == "__main__":
    main()
