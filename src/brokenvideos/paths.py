"""Where each artifact lives under the results root (docs/ARCHITECTURE.md, "Layout").

The one owner of the layout: the CLI steps and the Snakemake rules (workflow/rules/common.smk builds
one instance, ``P``) both take their paths from here. Methods that take names also take Snakemake
wildcard placeholders, e.g. ``shard_manifest("{generator}", "{shard}")``. Stdlib only: Snakemake
imports this module while it parses the workflow.
"""

from __future__ import annotations

from pathlib import Path


def op_level(op: str, level: int) -> str:
    """The name of one lossy operation at one level (``crf-2``): its folder and its config entry."""
    return f"{op}-{level}"


# A feature store's own files (detect.feature_store): the run's index, written last, and its meta.
STORE_INDEX, STORE_INDEX_META = "index.parquet", "index.json"


def backbone_slug(spec: str) -> str:
    """A backbone spec's folder name: the spec itself when it is a plain name, else its safe
    characters and a short hash of it (``hf:google/siglip-base-patch16-224`` ->
    ``hf-google-siglip-base-patch16-224-<6 hex>``), so two specs never share a store."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-.")[:80]
    return safe if safe == spec else f"{safe}-{hashlib.sha1(spec.encode()).hexdigest()[:6]}"


class ResultPaths:
    def __init__(self, results: str | Path = "results"):
        self.root = Path(results)

    @property
    def config_dir(self) -> Path:
        """The effective configs the workflow hands its jobs (content-addressed config-<digest>.json)."""
        return self.root / ".config"

    def effective_config(self, digest: str) -> Path:
        return self.config_dir / f"config-{digest}.json"

    # per-job timing (Snakemake `benchmark:` files; `brokenvideos phase-times` sums them per phase)
    @property
    def benchmarks_dir(self) -> Path:
        return self.root / "benchmarks"

    def benchmark(self, rule: str, *wildcards: str) -> Path:
        """results/benchmarks/<rule>.tsv, or <rule>/<wildcard>-<wildcard>.tsv for a rule with wildcards."""
        if not wildcards:
            return self.benchmarks_dir / f"{rule}.tsv"
        return self.benchmarks_dir / rule / ("-".join(str(w) for w in wildcards) + ".tsv")

    # prompts
    @property
    def prompts(self) -> Path:
        return self.root / "prompts" / "prompts.parquet"

    @property
    def prompts_log(self) -> Path:
        return self.prompts.with_name("prompts.log")

    # generation
    def video_dir(self, generator: str) -> Path:
        return self.root / "videos" / generator

    def video(self, generator: str, video_id: str) -> Path:
        return self.video_dir(generator) / f"{video_id}.mp4"

    def shard_manifest(self, generator: str, shard: int | str) -> Path:
        return self.video_dir(generator) / f"shard-{shard}.parquet"

    def shard_log(self, generator: str, shard: int | str) -> Path:
        """Log of generating one shard, beside its manifest."""
        return self.video_dir(generator) / f"shard-{shard}.log"

    @property
    def generated_masks_root(self) -> Path:
        return self.root / "generated_masks"

    def generated_masks(self, video_id: str) -> Path:
        """Masks a generator emitted itself (synthetic): input to the groundtruth annotator."""
        return self.generated_masks_root / video_id

    # annotation
    @property
    def masks_root(self) -> Path:
        return self.root / "masks"

    def masks(self, video_id: str) -> Path:
        return self.masks_root / video_id

    def annotation_dir(self, generator: str) -> Path:
        return self.root / "annotations" / generator

    def annotation_manifest(self, generator: str, shard: int | str) -> Path:
        return self.annotation_dir(generator) / f"shard-{shard}.parquet"

    def annotation_log(self, generator: str, shard: int | str) -> Path:
        """Log of annotating one shard, beside its manifest."""
        return self.annotation_dir(generator) / f"shard-{shard}.log"

    @property
    def annotation_quality_dir(self) -> Path:
        """SAM2-from-clicks masks scored against the synthetic generator's exact masks."""
        return self.root / "annotation_quality"

    @property
    def annotation_quality_table(self) -> Path:
        return self.annotation_quality_dir / "quality.csv"

    @property
    def annotation_quality_figure(self) -> Path:
        return self.annotation_quality_dir / "quality.png"

    @property
    def annotation_quality_log(self) -> Path:
        return self.annotation_quality_dir / "quality.log"

    # ingested datasets (existing folders of videos)
    @property
    def ingest_dir(self) -> Path:
        return self.root / "ingest"

    def ingest_manifest(self, name: str) -> Path:
        """The videos manifest of one ingested dataset (config `dataset.ingest[*].name`)."""
        return self.ingest_dir / f"{name}.parquet"

    def ingest_log(self, name: str) -> Path:
        return self.ingest_dir / f"{name}.log"

    # dataset
    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def videos_table(self) -> Path:
        return self.dataset_dir / "videos.parquet"

    @property
    def splits_table(self) -> Path:
        return self.dataset_dir / "splits.parquet"

    @property
    def dataset_stats(self) -> Path:
        return self.dataset_dir / "stats.json"

    @property
    def dataset_figures(self) -> Path:
        """Directory of the dataset's figures (one png each)."""
        return self.dataset_dir / "figures"

    @property
    def dataset_log(self) -> Path:
        return self.dataset_dir / "dataset.log"

    # localization: train → predict → evaluate → tables
    def train_dir(self, model: str) -> Path:
        """One localizer's training run (config `train.localizers[*].name`)."""
        return self.root / "train" / model

    def train_checkpoint(self, model: str, checkpoint: str) -> Path:
        """Saved weights of a localizer: checkpoint `initial` (before fine-tuning) or `final`."""
        return self.train_dir(model) / checkpoint

    def train_weights(self, model: str, checkpoint: str) -> Path:
        return self.train_checkpoint(model, checkpoint) / "model.pt"

    def train_curves(self, model: str) -> Path:
        """Per-epoch training metrics (csv)."""
        return self.train_dir(model) / "metrics.csv"

    def train_metrics(self, model: str) -> Path:
        """Summary of the training run (json)."""
        return self.train_dir(model) / "metrics.json"

    def train_log(self, model: str) -> Path:
        return self.train_dir(model) / "train.log"

    def predictions(self, model: str, checkpoint: str) -> Path:
        """Directory of a model's predictions; checkpoint `none` for a baseline."""
        return self.root / "predictions" / model / checkpoint

    def predictions_table(self, model: str, checkpoint: str) -> Path:
        return self.predictions(model, checkpoint) / "predictions.parquet"

    def predict_log(self, model: str, checkpoint: str) -> Path:
        return self.predictions(model, checkpoint) / "predict.log"

    # predictions of an outside model (config `evaluate.external`, brokenvideos import-predictions)
    @staticmethod
    def imported_checkpoint(finetuned: bool) -> str:
        """An imported model's row: `final` if fine-tuned on BrokenVideos, else `initial`, as a
        localizer's two rows are named."""
        return "final" if finetuned else "initial"

    def imported_predictions(self, model: str, finetuned: bool) -> Path:
        return self.predictions(model, self.imported_checkpoint(finetuned))

    def import_log(self, model: str, checkpoint: str) -> Path:
        return self.predictions(model, checkpoint) / "import.log"

    def metrics_dir(self, model: str, checkpoint: str) -> Path:
        """Evaluation of one model's predictions (one row of Table 2)."""
        return self.root / "metrics" / model / checkpoint

    def per_video_metrics(self, model: str, checkpoint: str) -> Path:
        return self.metrics_dir(model, checkpoint) / "per_video.parquet"

    def metrics_summary(self, model: str, checkpoint: str) -> Path:
        return self.metrics_dir(model, checkpoint) / "summary.json"

    def evaluate_log(self, model: str, checkpoint: str) -> Path:
        return self.metrics_dir(model, checkpoint) / "evaluate.log"

    @property
    def tables_dir(self) -> Path:
        """The localization tables and figures (Table 2, J&F breakdowns)."""
        return self.root / "tables"

    def table(self, stem: str) -> Path:
        """results/tables/<stem> (add .md/.csv/.json/.tex)."""
        return self.tables_dir / stem

    def table_figure(self, stem: str) -> Path:
        return self.tables_dir / "figures" / f"{stem}.png"

    @property
    def tables_log(self) -> Path:
        return self.tables_dir / "tables.log"

    # detection (brokenvideos.detect)
    @property
    def detect_dir(self) -> Path:
        return self.root / "detect"

    @property
    def detect_splits(self) -> Path:
        return self.detect_dir / "splits.parquet"

    @property
    def detect_split_log(self) -> Path:
        return self.detect_dir / "split.log"

    @property
    def detect_predictor(self) -> Path:
        return self.detect_dir / "predictor"

    @property
    def detect_predictor_weights(self) -> Path:
        return self.detect_predictor / "model" / "model.pt"

    @property
    def detect_predictor_metrics(self) -> Path:
        return self.detect_predictor / "metrics.json"

    @property
    def detect_predictor_log(self) -> Path:
        return self.detect_predictor / "train.log"

    def feature_store(self, backbone_slug: str, root: Path | None = None) -> Path:
        """One backbone's feature store (``detect.feature_store``); ``root``: another run's features dir."""
        return (root or self.detect_dir / "features") / backbone_slug

    def feature_index(self, backbone_slug: str) -> Path:
        return self.feature_store(backbone_slug) / STORE_INDEX

    def feature_index_meta(self, backbone_slug: str) -> Path:
        return self.feature_store(backbone_slug) / STORE_INDEX_META

    def feature_log(self, backbone_slug: str) -> Path:
        return self.detect_dir / "features" / f"{backbone_slug}.log"

    @property
    def detect_errors(self) -> Path:
        return self.detect_dir / "features" / "errors.parquet"

    @property
    def detect_errors_meta(self) -> Path:
        return self.detect_errors.with_suffix(".json")

    @property
    def detect_errors_log(self) -> Path:
        return self.detect_errors.with_suffix(".log")

    @property
    def detect_models_dir(self) -> Path:
        """Every trained detector (one Ray run), and that run's summary and log."""
        return self.detect_dir / "models"

    def detect_models(self, name: str) -> Path:
        return self.detect_models_dir / name

    def detect_model_metrics(self, name: str) -> Path:
        return self.detect_models(name) / "metrics.json"

    @property
    def detect_train_summary(self) -> Path:
        return self.detect_models_dir / "train.json"

    @property
    def detect_train_log(self) -> Path:
        return self.detect_models_dir / "train.log"

    @property
    def detect_eval_root(self) -> Path:
        return self.detect_dir / "eval"

    def detect_eval_dir(self, name: str) -> Path:
        """One detector's evaluation: <trainset>/<testset>/ results and its timing."""
        return self.detect_eval_root / name

    def detect_eval(self, name: str, trainset: str, testset: str) -> Path:
        return self.detect_eval_dir(name) / trainset / testset

    def detect_timing(self, name: str) -> Path:
        return self.detect_eval_dir(name) / "timing.json"

    def detect_eval_log(self, name: str) -> Path:
        return self.detect_eval_dir(name) / "evaluate.log"

    @property
    def detect_sora_root(self) -> Path:
        """Sora artifact-label classifiers, evaluated."""
        return self.detect_dir / "sora"

    def detect_sora(self, name: str) -> Path:
        return self.detect_sora_root / name

    def detect_sora_metrics(self, name: str) -> Path:
        return self.detect_sora(name) / "metrics.json"

    def detect_sora_log(self, name: str) -> Path:
        return self.detect_sora(name) / "evaluate.log"

    @property
    def detect_sora_models_dir(self) -> Path:
        """Sora artifact-label classifiers, trained (in the detectors' Ray run)."""
        return self.detect_dir / "sora_models"

    def detect_sora_model(self, name: str) -> Path:
        return self.detect_sora_models_dir / name

    def detect_sora_model_config(self, name: str) -> Path:
        return self.detect_sora_model(name) / "config.json"

    @property
    def detect_vidaid_dir(self) -> Path:
        """VID-AID detectors on the encoder cache: predictions, metrics, tables/, t-SNE."""
        return self.detect_dir / "vidaid"

    @property
    def detect_vidaid_metrics(self) -> Path:
        return self.detect_vidaid_dir / "metrics.json"

    @property
    def detect_vidaid_log(self) -> Path:
        return self.detect_vidaid_dir / "vidaid.log"

    @property
    def detect_tables_dir(self) -> Path:
        return self.detect_dir / "tables"

    def detect_table(self, stem: str) -> Path:
        """results/detect/tables/<stem> (add .md/.csv/.tex); beside, not inside, the localizer's tables/."""
        return self.detect_tables_dir / stem

    @property
    def detect_tables_log(self) -> Path:
        return self.detect_tables_dir / "detect_tables.log"

    # robustness (He et al. Table II; localizers on lossy copies): one folder per operation x level
    @property
    def robustness_dir(self) -> Path:
        return self.root / "robustness"

    def degraded(self, op_level: str) -> Path:
        """results/robustness/<op>-<level>/ (e.g. crf-2): the lossy copies and what was tested on them."""
        return self.robustness_dir / op_level

    def degraded_video(self, op_level: str, video_id: str) -> Path:
        return self.degraded(op_level) / "videos" / f"{video_id}.mp4"

    def degraded_record(self, op_level: str, video_id: str) -> Path:
        """The video's `brokenvideos degrade` record, written after its mp4: a finished video."""
        return self.degraded(op_level) / "records" / f"{video_id}.json"

    def degraded_videos_table(self, op_level: str) -> Path:
        """The videos contract for the lossy copies (paths and sha256 replaced, the record's columns added)."""
        return self.degraded(op_level) / "videos.parquet"

    def degraded_log(self, op_level: str, step: str) -> Path:
        return self.degraded(op_level) / f"{step}.log"

    def robustness_detect_dir(self, op_level: str) -> Path:
        """Caches and detect-evaluate's contract (<name>/<train>/<test>/metrics.json) on the copies."""
        return self.degraded(op_level) / "detect"

    def robustness_detect_done(self, op_level: str) -> Path:
        return self.robustness_detect_dir(op_level) / "metrics.json"

    def robustness_localize_dir(self, op_level: str) -> Path:
        """Predictions and metrics (<model>/predictions, <model>/metrics/summary.json) on the copies."""
        return self.degraded(op_level) / "localize"

    def robustness_localize_done(self, op_level: str) -> Path:
        return self.robustness_localize_dir(op_level) / "metrics.json"

    @property
    def robustness_tables_dir(self) -> Path:
        return self.robustness_dir / "tables"

    def robustness_table(self, stem: str) -> Path:
        """results/robustness/tables/<stem> (add .md/.csv/.tex)."""
        return self.robustness_tables_dir / stem

    @property
    def robustness_metrics(self) -> Path:
        """Both robustness tables as one JSON document (the DVC metric)."""
        return self.robustness_tables_dir / "robustness.json"

    @property
    def robustness_figure(self) -> Path:
        return self.robustness_tables_dir / "figures" / "robustness.png"

    @property
    def robustness_tables_log(self) -> Path:
        return self.robustness_tables_dir / "robustness_tables.log"
