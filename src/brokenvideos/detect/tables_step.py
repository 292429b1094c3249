"""`brokenvideos detect-tables`: He et al. Table I and Table III and the Sora-label table, as
md/csv/tex, built only from the evaluation contract files (metrics.json per train/test set).

- Table I: a row per (training generator, detector), a column per test generator, plus Ave.;
  clip-level accuracy (%) at threshold 0.5, as in the paper. Companion tables give AUC and the
  video-level accuracy in the same layout.
- Table III: f_glob; f_glob + f_local (concatenation); CA fusion — Acc is the mean over every
  (training, test) pair (the paper's 92.46 is the mean of its Table I "Ours" Ave. column).
- Sora labels: a row per classifier; average multi-label accuracy, per-label accuracy and F1.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.detect.settings import detect_settings
from brokenvideos.detect.sora import LABELS
from brokenvideos.errors import InputError
from brokenvideos.report.tables import PCT_DIGITS, to_markdown, write_table_files

log = logging.getLogger(__name__)


def read_metrics(eval_root, name: str) -> dict[tuple[str, str], dict]:
    root = Path(eval_root) / name
    out = {}
    for f in sorted(root.glob("*/*/metrics.json")):
        out[(f.parent.parent.name, f.parent.name)] = json.loads(f.read_text())
    if not out:
        raise InputError(root, "no metrics.json under it (run detect-evaluate first)")
    return out


def _pct(v):
    return None if v is None else round(100.0 * v, PCT_DIGITS)


def table1(eval_root, names: list[str], labels: dict[str, str], metric: str = "accuracy_clip") -> pd.DataFrame:
    per = {n: read_metrics(eval_root, n) for n in names}
    gens = sorted({t for m in per.values() for _, t in m})
    trains = sorted({a for m in per.values() for a, _ in m})
    rows = []
    for train in trains:
        for n in names:
            row = {"Train\\Test": train, "Detector": labels.get(n, n)}
            vals = []
            for test in gens:
                v = per[n].get((train, test), {}).get(metric)
                row[test] = _pct(v)
                vals.append(np.nan if v is None else v)
            row["Ave."] = _pct(float(np.nanmean(vals))) if not np.all(np.isnan(vals)) else None
            rows.append(row)
    return pd.DataFrame(rows)


def table3(eval_root, ablation: dict[str, str]) -> pd.DataFrame:
    marks = {"glob": ("✓", "", ""), "concat": ("✓", "✓", ""), "ca": ("✓", "✓", "✓")}
    rows = []
    for key in ("glob", "concat", "ca"):
        m = read_metrics(eval_root, ablation[key])
        acc = float(np.mean([v["accuracy_clip"] for v in m.values()]))
        g, l, c = marks[key]
        rows.append({"f_glob": g, "f_local": l, "CA-based fusion": c, "Acc": _pct(acc), "Detector": ablation[key]})
    return pd.DataFrame(rows)


def sora_table(sora_root, names: list[str]) -> pd.DataFrame:
    rows = []
    for n in names:
        f = Path(sora_root) / n / "metrics.json"
        if not f.exists():
            raise InputError(f, "Sora-label metrics are missing (run detect-sora first)")
        m = json.loads(f.read_text())
        row = {"Classifier": n, "Backbone": m["backbone"] + (" (frozen)" if m["frozen"] else ""),
               "Avg. multi-label acc": _pct(m["average_accuracy"])}
        for lab in LABELS:
            row[f"{lab} acc"] = _pct(m["per_label"][lab]["accuracy"])
            row[f"{lab} F1"] = _pct(m["per_label"][lab]["f1"])
        row["frames"] = m["frames"]
        rows.append(row)
    return pd.DataFrame(rows)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--eval-root", required=True, help="<results>/detect/eval")
    p.add_argument("--sora-root", required=True, help="<results>/detect/sora")
    p.add_argument("--out-dir", required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    s = detect_settings(cfg)
    labels = {n: e.get("label", n) for n, e in s["detectors"].items()}
    out = Path(args.out_dir)
    t1 = table1(args.eval_root, s["table1"], labels)
    write_table_files(t1, out / "detect_table1", "Cross-generator clip accuracy (\\%) at threshold 0.5 (He et al. Table I layout).", PCT_DIGITS)
    write_table_files(table1(args.eval_root, s["table1"], labels, "auc"), out / "detect_table1_auc",
                      "Cross-generator AUC (\\%), Table I layout.", PCT_DIGITS)
    write_table_files(table1(args.eval_root, s["table1"], labels, "accuracy_video"), out / "detect_table1_video",
                      "Cross-generator video-level accuracy (\\%) at threshold 0.5, Table I layout.", PCT_DIGITS)
    t3 = table3(args.eval_root, s["table3"])
    write_table_files(t3, out / "detect_table3", "Ablation of key components, clip accuracy (\\%) averaged over all train/test pairs (He et al. Table III layout).", PCT_DIGITS)
    st = sora_table(args.sora_root, list(s["sora"]["classifiers"]))
    write_table_files(st, out / "sora_labels", "Sora four-label artifact classification on test frames (\\%), threshold 0.5.", PCT_DIGITS)
    print(to_markdown(t1, PCT_DIGITS), end="")
    print(to_markdown(t3, PCT_DIGITS), end="")
    print(to_markdown(st, PCT_DIGITS), end="")
    return 0
