"""The torch thread count of a step that runs torch in its own process: its rule's ``threads``.

torch's default is a thread per core, so two such jobs side by side oversubscribe the cores (on 2
cores, two `localize-robustness` jobs each ran 4x slower than one alone). Rules pass
``--threads {threads}``; Ray workers and actors set their ``cpus_per_worker`` themselves.
"""

from __future__ import annotations


def add_threads_argument(p, help: str = "torch threads (0: torch's default)") -> None:
    p.add_argument("--threads", type=int, default=0, help=help)


def set_torch_threads(threads: int) -> None:
    """torch's and OpenCV's (the frame predictor's optical flow) thread counts."""
    if threads:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
