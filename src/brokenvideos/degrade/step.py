"""`brokenvideos degrade`: one lossy copy of a video (H.265 ABR or CRF, or bit errors, at level
1-3 of He et al. V-D); prints its record as one line of JSON."""

from __future__ import annotations

import json

from brokenvideos.degrade.ops import OPERATIONS, degrade


def add_arguments(p) -> None:
    p.add_argument("--in", dest="src", required=True, help="an mp4 (H.264 or HEVC)")
    p.add_argument("--out", required=True, help="the degraded mp4 (written atomically)")
    p.add_argument("--op", required=True, choices=OPERATIONS)
    p.add_argument("--level", required=True, type=int, choices=(1, 2, 3))
    p.add_argument("--seed", type=int, default=0, help="where the bit errors fall")
    p.add_argument("--interval", type=int, help="bit-error: bytes per flipped bit instead of the level's "
                                                 "(the paper's 10^5-10^6 flip nothing in a clip of a few kB)")


def run(args) -> int:
    record = degrade(args.src, args.out, args.op, args.level, seed=args.seed, interval=args.interval)
    print(json.dumps(record, sort_keys=True))
    return 0
