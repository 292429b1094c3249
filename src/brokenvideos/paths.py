"""Where each artifact lives under the results root (docs/ARCHITECTURE.md, "Layout")."""

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

    # detection (brokenvideos.detect)
    @property
    def detect_dir(self) -> Path:
        return self.root / "detect"

    @property
    def detect_splits(self) -> Path:
        return self.detect_dir / "splits.parquet"

    @property
    def detect_predictor(self) -> Path:
        return self.detect_dir / "predictor"

    @property
    def detect_features(self) -> Path:
        return self.detect_dir / "features" / "encoder.parquet"

    @property
    def detect_errors(self) -> Path:
        return self.detect_dir / "features" / "errors.parquet"

    def detect_models(self, name: str) -> Path:
        return self.detect_dir / "models" / name

    def detect_eval(self, name: str, trainset: str, testset: str) -> Path:
        return self.detect_dir / "eval" / name / trainset / testset

    def detect_sora(self, name: str) -> Path:
        return self.detect_dir / "sora" / name

    def detect_sora_model(self, name: str) -> Path:
        return self.detect_dir / "sora_models" / name

    def detect_table(self, stem: str) -> Path:
        """results/detect/tables/<stem> (add .md/.csv/.tex); beside, not inside, the localizer's tables/."""
        return self.detect_dir / "tables" / stem
