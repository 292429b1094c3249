"""`brokenvideos tables`: BrokenVideos Table 2 in the paper's layout, and breakdowns.

Table 2: a row per method × fine-tuned (✗/✓); J, F, J&F on broken, normal and all videos.
Breakdowns: J&F per artifact category and per generator. Each as Markdown, CSV and LaTeX.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.io.atomic import atomic_path, write_json, write_text
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths
from brokenvideos.report.figures import overlays, training_curves
from brokenvideos.dataset.splits import split_videos

GROUP_TITLES = {"broken": "Broken Videos", "normal": "Normal Videos", "all": "All Videos"}


def table2(entries: list[tuple[str, bool, Path]]) -> pd.DataFrame:
    rows = []
    for method, finetuned, metrics_dir in entries:
        summary = json.loads((Path(metrics_dir) / "summary.json").read_text())
        row = {"Method": method, "Finetuned": "✓" if finetuned else "✗"}
        for group, title in GROUP_TITLES.items():
            for metric in ("J", "F", "J&F"):
                row[f"{title} {metric}"] = summary[group][metric]
        rows.append(row)
    return pd.DataFrame(rows)


def table2_metrics(entries) -> dict:
    """Table 2 as DVC metrics: {method: {finetuned | not_finetuned: {broken|normal|all: {J, F, J&F}}}}."""
    out: dict = {}
    for method, finetuned, metrics_dir in entries:
        summary = json.loads((Path(metrics_dir) / "summary.json").read_text())
        out.setdefault(method, {})["finetuned" if finetuned else "not_finetuned"] = {
            group: {m: summary[group][m] for m in ("J", "F", "J&F")} for group in GROUP_TITLES}
    return out


def _frame_rows(metrics_dir) -> pd.DataFrame:
    """One row per video (the davis protocol repeats a video once per object)."""
    return read_table(Path(metrics_dir) / "per_video.parquet").drop_duplicates("video")


def frames_table(entries) -> pd.DataFrame:
    """What each row of Table 2 does frame by frame (beyond the paper): J&F on the frames that have
    an artifact (where predicting nothing scores 0, not the empty-frame floor), whether it fires on
    the frames with an artifact (frame precision, recall, F1, pooled over broken and normal
    videos), and how often it fires on a frame without one."""
    rows = []
    for method, finetuned, metrics_dir in entries:
        v = _frame_rows(metrics_dir)
        tp, fp, fn, tn = (int(v[f"frames_{k}"].sum()) for k in ("tp", "fp", "fn", "tn"))
        broken = v[v.label == "broken"]
        rows.append({"Method": method, "Finetuned": "✓" if finetuned else "✗",
                     "Artifact-frame J&F": float(broken.JF_artifact.mean()) if len(broken) else float("nan"),
                     "Frame precision": tp / (tp + fp) if tp + fp else 0.0,
                     "Frame recall": tp / (tp + fn) if tp + fn else 0.0,
                     "Frame F1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
                     "False-positive rate (artifact-free frames)": fp / (fp + tn) if fp + tn else 0.0})
    return pd.DataFrame(rows)


def frames_by_category(entries) -> pd.DataFrame:
    """Artifact-frame J&F per category, with how many distinct scenes (prompts) each figure rests on."""
    cols, scenes = {}, None
    for method, finetuned, metrics_dir in entries:
        broken = _frame_rows(metrics_dir).query("label == 'broken'")
        cols[f"{method} {'✓' if finetuned else '✗'}"] = broken.groupby("category").JF_artifact.mean()
        scenes = broken.groupby("category").prompt_id.nunique() if scenes is None else scenes
    out = pd.DataFrame({"scenes": scenes, **cols})
    out.index.name = "category"
    return out.reset_index()


def breakdown(entries, by: str) -> pd.DataFrame:
    """Mean J&F per ``by`` value (category or generator), one column per method row."""
    cols = {}
    for method, finetuned, metrics_dir in entries:
        per_video = read_table(Path(metrics_dir) / "per_video.parquet")
        cols[f"{method} {'✓' if finetuned else '✗'}"] = per_video.groupby(by).JF.mean()
    out = pd.DataFrame(cols)
    out.index.name = by
    return out.reset_index()


PCT_DIGITS = 2  # percentages (the detection tables) are rounded to, and printed with, 2 decimals


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """``digits``: decimals of every float cell."""
    def cell(v):
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, caption: str, digits: int = 4) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return {"✓": r"\checkmark", "✗": r"$\times$"}.get(str(v), str(v).replace("_", r"\_").replace("&", r"\&"))

    head = " & ".join(cell(c) for c in df.columns) + r" \\"
    body = "\n".join(" & ".join(cell(v) for v in row) + r" \\" for row in df.itertuples(index=False))
    return (f"\\begin{{table}}[t]\n\\centering\n\\begin{{tabular}}{{{'l' * 2 + 'c' * (len(df.columns) - 2)}}}\n"
            f"\\toprule\n{head}\n\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\caption{{{caption}}}\n"
            f"\\end{{table}}\n")


def write_table_files(df: pd.DataFrame, stem: Path, caption: str, digits: int = 4) -> None:
    write_text(stem.with_suffix(".md"), to_markdown(df, digits))
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        df.to_csv(tmp, index=False)
    write_text(stem.with_suffix(".tex"), to_latex(df, caption, digits))


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--entry", nargs=3, action="append", required=True, metavar=("METHOD", "FINETUNED", "METRICS_DIR"),
                   help="e.g. st_unet yes results/metrics/st_unet/final (repeatable, in table order)")
    p.add_argument("--curves", nargs=2, action="append", default=[], metavar=("NAME", "METRICS_CSV"),
                   help="a localizer's training curves (repeatable)")
    p.add_argument("--overlay-pred", nargs=2, action="append", default=[], metavar=("NAME", "PRED_DIR"),
                   help="a localizer's predictions for the overlay figure (repeatable)")
    p.add_argument("--split", default="val")
    p.add_argument("--out-dir", required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    entries = [(m, f.lower() in ("yes", "true", "1", "✓"), Path(d)) for m, f, d in args.entry]
    out = Path(args.out_dir)
    t2 = table2(entries)
    write_table_files(t2, out / "table2", "Localization on the validation split (BrokenVideos Table 2 layout).")
    write_json(out / "table2.json", table2_metrics(entries))
    write_table_files(breakdown(entries, "category"), out / "jf_by_category", "J\\&F by artifact category.")
    write_table_files(breakdown(entries, "generator"), out / "jf_by_generator", "J\\&F by generator.")
    frames = frames_table(entries)
    write_table_files(frames, out / "frames", "Frame by frame: J\\&F on artifact frames, firing on artifact frames, "
                      "false positives on artifact-free frames.")
    by_cat = frames_by_category(entries)
    write_table_files(by_cat, out / "frames_by_category", "Artifact-frame J\\&F by category; scenes: distinct "
                      f"prompts per category ({int(by_cat.scenes.sum()) if len(by_cat) else 0} in all).")
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    if args.curves:
        training_curves(dict(args.curves), figures / "training_curves.png")
    if args.overlay_pred:
        paths = ResultPaths(cfg["results"])
        overlays(split_videos(paths.videos_table, paths.splits_table, args.split), dict(args.overlay_pred),
                 figures / "overlays.png")
    print(to_markdown(t2), end="")
    print(to_markdown(frames), end="")
    return 0
