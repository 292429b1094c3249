"""Where each artifact lives under the results root (ARCHITECTURE.md layout)."""

from __future__ import annotations

from pathlib import Path


class ResultPaths:
    def __init__(self, results: str | Path = "results"):
        self.root = Path(results)

    @property
    def prompts(self) -> Path:
        return self.root / "prompts" / "prompts.parquet"

    def video_dir(self, generator: str) -> Path:
        return self.root / "videos" / generator

    def video(self, generator: str, video_id: str) -> Path:
        return self.video_dir(generator) / f"{video_id}.mp4"

    def shard_manifest(self, generator: str, shard: int) -> Path:
        return self.video_dir(generator) / f"shard-{shard}.parquet"

    @property
    def generated_masks_root(self) -> Path:
        return self.root / "generated_masks"

    def generated_masks(self, video_id: str) -> Path:
        """Masks a generator emitted itself (synthetic): input to the groundtruth annotator."""
        return self.generated_masks_root / video_id

    @property
    def masks_root(self) -> Path:
        return self.root / "masks"

    def masks(self, video_id: str) -> Path:
        return self.masks_root / video_id

    def annotation_manifest(self, generator: str, shard: int) -> Path:
        return self.root / "annotations" / generator / f"shard-{shard}.parquet"

    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def videos_table(self) -> Path:
        return self.dataset_dir / "videos.parquet"

    @property
    def splits_table(self) -> Path:
        return self.dataset_dir / "splits.parquet"

    def predictions(self, model: str, checkpoint: str) -> Path:
        return self.root / "predictions" / model / checkpoint
