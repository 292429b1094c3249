"""`brokenvideos robustness-tables`: how detection and localization hold up under lossy operations.

- He et al. **Table II** layout (``detect_table2``): a row per operation x level, after the clean
  "Raw Data" row; a column per detector of ``robustness.detectors``; each cell the clip accuracy (%)
  at 0.5, averaged over every (training generator, test generator) pair, as the paper's raw-data
  row is its Table III figure, the mean of Table I.
- **Localizers** (``localize_robustness``, beyond the papers): broken-video J&F of each fine-tuned
  localizer per operation x level, beside its clean Table 2 figure, and the change.
Both read only the evaluation contracts (metrics.json per (train, test) pair; summary.json per
localizer); a figure plots both against the level. Never loads torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.errors import InputError
from brokenvideos.io.atomic import write_json
from brokenvideos.paths import ResultPaths
from brokenvideos.report.figures import _plt
from brokenvideos.report.tables import PCT_DIGITS, to_markdown, write_table_files

OP_TITLES = {"bit-error": "Bit Error", "abr": "H.265 ABR", "crf": "H.265 CRF"}  # the paper's row order


def mean_accuracy(eval_dir) -> float:
    """Mean clip accuracy over a detector's (train, test) pairs (detect-evaluate's contract)."""
    files = sorted(Path(eval_dir).glob("*/*/metrics.json"))
    if not files:
        raise InputError(eval_dir, "no <train>/<test>/metrics.json under it (run the evaluation first)")
    return float(np.mean([json.loads(f.read_text())["accuracy_clip"] for f in files]))


def _ordered(operations) -> list[tuple[str, int]]:
    """``["crf-2", ...]`` as (op, level) in the paper's row order."""
    pairs = [(name.rsplit("-", 1)[0], int(name.rsplit("-", 1)[1])) for name in operations]
    return sorted(pairs, key=lambda o: (list(OP_TITLES).index(o[0]), o[1]))


def detect_table2(cfg: dict) -> pd.DataFrame:
    paths, names = ResultPaths(cfg["results"]), cfg["robustness"]["detectors"]
    labels = {n: cfg["detect"]["detectors"][n].get("label", n) for n in names}
    rows = [{"Lossy operation": "Raw Data", "Level": "None",
             **{labels[n]: round(100 * mean_accuracy(paths.detect_eval_dir(n)), PCT_DIGITS) for n in names}}]
    for op, level in _ordered(cfg["robustness"]["operations"]):
        eval_root = paths.robustness_detect_dir(f"{op}-{level}") / "eval"
        rows.append({"Lossy operation": OP_TITLES[op], "Level": str(level),
                     **{labels[n]: round(100 * mean_accuracy(eval_root / n), PCT_DIGITS) for n in names}})
    return pd.DataFrame(rows)


def _broken(summary_path) -> dict:
    path = Path(summary_path)
    if not path.exists():
        raise InputError(path, "missing (run the evaluation first)")
    return json.loads(path.read_text())["broken"]


def localize_table(cfg: dict) -> pd.DataFrame:
    paths = ResultPaths(cfg["results"])
    models = [e["name"] for e in cfg["train"]["localizers"]]
    clean = {m: _broken(paths.metrics_summary(m, "final"))["J&F"] for m in models}
    rows = [{"Lossy operation": "Clean", "Level": "None", **{f"{m} J&F": clean[m] for m in models},
             **{f"{m} change": 0.0 for m in models}}]
    for op, level in _ordered(cfg["robustness"]["operations"]):
        d = paths.robustness_localize_dir(f"{op}-{level}")
        jf = {m: _broken(d / m / "metrics" / "summary.json")["J&F"] for m in models}
        rows.append({"Lossy operation": OP_TITLES[op], "Level": str(level), **{f"{m} J&F": jf[m] for m in models},
                     **{f"{m} change": round(jf[m] - clean[m], 6) for m in models}})
    return pd.DataFrame(rows)


def robustness_figure(detect: pd.DataFrame | None, localize: pd.DataFrame | None, out_path) -> None:
    """One panel per operation: each detector's accuracy and each localizer's J&F against the level."""
    plt = _plt()
    ops = [op for op in OP_TITLES.values()
           if any(t is not None and op in set(t["Lossy operation"]) for t in (detect, localize))]
    fig, axes = plt.subplots(2 if detect is not None and localize is not None else 1, len(ops),
                             figsize=(3.6 * len(ops), 5.6 if detect is not None and localize is not None else 3),
                             squeeze=False)
    panels = [(t, title, cols) for t, title, cols in (
        (detect, "clip accuracy (%)", None if detect is None else list(detect.columns[2:])),
        (localize, "broken J&F", None if localize is None else [c for c in localize.columns if c.endswith(" J&F")]))
        if t is not None]
    for row, (table, ylabel, cols) in enumerate(panels):
        raw = table.iloc[0]
        for col_i, op in enumerate(ops):
            ax = axes[row][col_i]
            part = table[table["Lossy operation"] == op]
            for c in cols:
                ax.plot([0] + part.Level.astype(int).tolist(), [raw[c]] + part[c].tolist(), marker="o", ms=3,
                        label=c.removesuffix(" J&F"))
            ax.set_xticks([0, 1, 2, 3], ["clean", "1", "2", "3"])
            ax.set_title(op, fontsize=9)
            ax.set_ylabel(ylabel if col_i == 0 else "")
        axes[row][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    rob = cfg["robustness"]
    detect = detect_table2(cfg) if rob["detectors"] else None
    localize = localize_table(cfg) if rob["localizers"] else None
    metrics = {}
    if detect is not None:
        write_table_files(detect, paths.robustness_table("detect_table2"), "Robustness against lossy operations "
                          "(He et al. Table II layout): clip accuracy (\\%) at 0.5, mean over every (training, test) "
                          "generator pair.", PCT_DIGITS)
        metrics["detect_table2"] = detect.to_dict("records")
        print(to_markdown(detect, PCT_DIGITS), end="")
    if localize is not None:
        write_table_files(localize, paths.robustness_table("localize_robustness"), "Fine-tuned localizers on lossy "
                          "copies of the evaluation split's broken videos: J\\&F, and its change from the clean videos.")
        metrics["localize_robustness"] = localize.to_dict("records")
        print(to_markdown(localize), end="")
    paths.robustness_figure.parent.mkdir(parents=True, exist_ok=True)
    robustness_figure(detect, localize, paths.robustness_figure)
    write_json(paths.robustness_metrics, metrics)
    return 0
