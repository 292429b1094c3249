"""VID-AID (Mittal et al.): detection from frozen pre-trained features, with no or almost no training.

A video's feature is the mean of its frames' features (the paper's rule for image encoders such as
SigLIP), read from the run's encoder cache, so no backbone runs here.

- ``nearest``, training-free (§4.2, after Ojha et al.): a test video takes the label of the
  reference video at the smallest Euclidean distance.
- ``linear_probe`` (§4.3): one linear layer, cross-entropy, Adam; the paper's recipe is 100 epochs,
  batch 32, lr 1e-4.
- ``second_order``, training-free (beyond the seeds, after D3): the spread over time of the
  second-order differences of the frame features, f_{t+2} - 2 f_{t+1} + f_t. It needs no
  reference labels for its score; its direction (which side is real) and threshold are read from
  the reference set, and both are reported.

Protocols (§5.1): ``one_to_many`` — reference/training set = real + one generator, tested on each
other generator (the paper leaves the diagonal out); ``many_to_many`` — real + every generator,
tested on each generator. Reference videos come from the detection split's train part and test
videos from its test part: the split is grouped by prompt, so no scene is on both sides (the
paper's "half split that keeps video content apart").
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import cdist
from torch import nn

from brokenvideos.detect.metrics import f1, roc_auc

METHODS = ("nearest", "linear_probe", "second_order")
PROTOCOLS = ("one_to_many", "many_to_many")
ALL = "all generators"


def video_features(frame_features: dict[str, np.ndarray], ids) -> np.ndarray:
    return np.stack([frame_features[v].mean(axis=0) for v in ids]).astype(np.float64)


def second_order_spread(frames: np.ndarray) -> float:
    """Standard deviation over time of ||f_{t+2} - 2 f_{t+1} + f_t|| (a video's T x D features)."""
    if len(frames) < 3:
        return float("nan")
    d2 = frames[2:] - 2 * frames[1:-1] + frames[:-2]
    return float(np.linalg.norm(d2, axis=1).std())


class NearestReference:
    """1-nearest neighbour in Euclidean distance; ties go to the earlier reference (as scikit-learn)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "NearestReference":
        self.x, self.y = np.asarray(x, np.float64), np.asarray(y, int)
        return self

    def distances(self, x: np.ndarray) -> np.ndarray:
        return cdist(np.asarray(x, np.float64), self.x)  # (tests, references), exact per pair

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.y[np.argmin(self.distances(x), axis=1)]

    def score(self, x: np.ndarray) -> np.ndarray:
        """P(generated)-like score: d_real / (d_real + d_fake) with the nearest of each class."""
        d = self.distances(x)
        real = d[:, self.y == 0].min(axis=1) if (self.y == 0).any() else np.full(len(d), np.inf)
        fake = d[:, self.y == 1].min(axis=1) if (self.y == 1).any() else np.full(len(d), np.inf)
        return real / np.maximum(real + fake, 1e-12)


class LinearProbe:
    """One linear layer on frozen features, two-class cross-entropy, Adam (VID-AID §5.2)."""

    def __init__(self, epochs: int = 100, batch_size: int = 32, lr: float = 1e-4, seed: int = 0):
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearProbe":
        g = torch.Generator().manual_seed(self.seed)
        x, y = torch.tensor(np.asarray(x), dtype=torch.float32), torch.tensor(np.asarray(y), dtype=torch.long)
        with torch.random.fork_rng():  # a seeded init that leaves the caller's RNG alone
            torch.manual_seed(self.seed)
            self.layer = nn.Linear(x.shape[1], 2)
        opt = torch.optim.Adam(self.layer.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), self.batch_size):
                idx = order[i:i + self.batch_size]
                loss = nn.functional.cross_entropy(self.layer(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return self

    @torch.no_grad()
    def score(self, x: np.ndarray) -> np.ndarray:
        logits = self.layer(torch.tensor(np.asarray(x), dtype=torch.float32))
        return torch.softmax(logits, dim=1)[:, 1].double().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self.score(x) >= 0.5).astype(int)


class SecondOrder:
    """Training-free: the score is the second-order spread; the reference set only says which side
    is real and where the threshold sits (the midpoint of the two classes' medians)."""

    def fit(self, spread: np.ndarray, y: np.ndarray) -> "SecondOrder":
        spread, y = np.asarray(spread, float), np.asarray(y, int)
        real, fake = np.median(spread[y == 0]), np.median(spread[y == 1])
        self.real_is_higher = bool(real > fake)
        self.threshold = float((real + fake) / 2)
        return self

    def score(self, spread: np.ndarray) -> np.ndarray:
        s = np.asarray(spread, float)
        return -s if self.real_is_higher else s  # higher = more likely generated

    def predict(self, spread: np.ndarray) -> np.ndarray:
        s = np.asarray(spread, float)
        return (s < self.threshold if self.real_is_higher else s >= self.threshold).astype(int)

    @property
    def direction(self) -> str:
        return "real: higher spread" if self.real_is_higher else "real: lower spread"


def evaluate(labels, predicted, scores) -> dict:
    labels = np.asarray(labels, int)
    return {"f1_real": f1(labels, predicted, 0), "f1_fake": f1(labels, predicted, 1),
            "accuracy": float(np.mean(np.asarray(predicted) == labels)), "auc": roc_auc(labels, scores),
            "num_videos": int(len(labels)), "num_generated": int(labels.sum())}


def reference_sets(generators: list[str], protocol: str) -> list[tuple[str, list[str]]]:
    """(name, generators in the reference/training set) for a protocol."""
    if protocol == "one_to_many":
        return [(g, [g]) for g in generators]
    if protocol == "many_to_many":
        return [(ALL, list(generators))]
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def test_sets(generators: list[str], reference: list[str], protocol: str) -> list[str]:
    return [g for g in generators if not (protocol == "one_to_many" and g in reference)]
