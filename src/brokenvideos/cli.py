"""One CLI, one subcommand per pipeline step. Snakemake rules and DVC stages only call these.

Each step module exposes ``add_arguments(parser)`` and ``run(args) -> int``; modules load lazily so
``brokenvideos --help`` stays fast and a step's heavy imports (torch, ray, sam2) cost only that step.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from brokenvideos.errors import BrokenVideosError

COMMANDS: dict[str, tuple[str, str]] = {
    "prompts": ("brokenvideos.prompts.step", "write prompts.parquet from the taxonomy and scene weights"),
    "generate": ("brokenvideos.generators.step", "render one shard of videos with one generator"),
    "annotate": ("brokenvideos.annotate.step", "write DAVIS masks for one shard of videos"),
    "dataset": ("brokenvideos.dataset.step", "merge shards, validate videos and masks, split, statistics"),
    "ingest": ("brokenvideos.dataset.ingest", "bring a folder of existing videos (and masks) into a manifest"),
    "export-mevis": ("brokenvideos.dataset.mevis_export", "one split in the MeViS layout (SAMWISE, GLUS, VideoLISA)"),
    "train": ("brokenvideos.train.step", "train a localizer with Ray Train"),
    "predict": ("brokenvideos.models.predict", "write predicted masks for a split"),
    "import-predictions": ("brokenvideos.models.import_predictions", "an outside model's masks (MeViS output layout) as predictions"),
    "evaluate-masks": ("brokenvideos.metrics.evaluate_masks", "J, F, J&F of predicted masks (DAVIS 2017 semantics)"),
    "evaluate": ("brokenvideos.metrics.evaluate", "score a model's predictions on a split (per video + aggregate)"),
    "tables": ("brokenvideos.report.tables", "BrokenVideos Table 2 and breakdowns as md/csv/tex + figures"),
    "phase-times": ("brokenvideos.report.phase_times", "where a Snakemake run's time went, per phase and per rule"),
    "annotation-quality": ("brokenvideos.annotate.quality", "SAM2 masks vs ground truth as a function of clicks"),
    "detect": ("brokenvideos.detect.video_step", "is this video generated? score a video (or --folder) with a detector"),
    "detect-split": ("brokenvideos.detect.split_step", "detection manifest: real vs generated, prompt-grouped splits"),
    "detect-predictor": ("brokenvideos.detect.predictor_step", "train the frame predictor on real videos (Ray Train)"),
    "detect-features": ("brokenvideos.detect.features_step", "cache frozen-encoder features and prediction errors"),
    "detect-train": ("brokenvideos.detect.train_step", "train a detector on each generator's training set (Ray Train)"),
    "detect-evaluate": ("brokenvideos.detect.evaluate_step", "detections.parquet + metrics.json per train/test set"),
    "detect-sora": ("brokenvideos.detect.sora_step", "train and score the Sora four-label artifact classifier"),
    "detect-vidaid": ("brokenvideos.detect.vidaid_step", "VID-AID nearest-reference / linear-probe detectors, one-to-many and many-to-many"),
    "detect-tables": ("brokenvideos.detect.tables_step", "He et al. Tables I and III and the Sora-label table"),
    "degrade": ("brokenvideos.degrade.step", "a lossy copy of a video: H.265 ABR / CRF or bit errors (He et al. V-D)"),
    "degrade-videos": ("brokenvideos.degrade.videos_step", "lossy copies of the test videos for the robustness tables"),
    "detect-robustness": ("brokenvideos.detect.robustness_step", "detectors on one operation x level's lossy copies (He et al. Table II)"),
    "localize-robustness": ("brokenvideos.models.robustness_step", "fine-tuned localizers on one operation x level's lossy copies"),
    "robustness-tables": ("brokenvideos.report.robustness", "He et al. Table II and the localizers' robustness table + figure"),
    "annotate-ui": ("brokenvideos.annotate.ui.server", "the SAM2 annotation tool in a browser, on localhost"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brokenvideos", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the command name first, then hand the rest to that step's own parser.
    known, rest = parser.parse_known_args(argv)
    module_name, help_text = COMMANDS[known.command]
    logging.basicConfig(
        level=logging.DEBUG if known.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module = importlib.import_module(module_name)
    step_parser = argparse.ArgumentParser(prog=f"brokenvideos {known.command}", description=help_text)
    module.add_arguments(step_parser)
    args = step_parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except BrokenVideosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
