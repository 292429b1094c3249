"""`brokenvideos detect-vidaid`: VID-AID's training-free and linear-probe detectors (and the
second-order spread) under the one-to-many and many-to-many protocols, from each backbone's feature
store (no backbone runs here).

Writes ``<out>/predictions.parquet`` (one row per method, protocol, reference set, test set and
video), ``<out>/metrics.json``, the paper's Tables 2-5 layout (rows: reference set x backbone x
F1-Real / F1-Fake; columns: test generators) as md/csv/tex in ``<out>/tables/``, and a t-SNE of
the video features coloured by generator (VID-AID Fig. 2) as ``<out>/tsne.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brokenvideos.config import load_config
from brokenvideos.detect import vidaid
from brokenvideos.detect.data import generated_generators
from brokenvideos.detect.feature_store import read_store
from brokenvideos.detect.settings import detect_settings, vidaid_backbones
from brokenvideos.errors import BrokenVideosError
from brokenvideos.io.atomic import atomic_path, write_json
from brokenvideos.io.tables import read_table
from brokenvideos.paths import ResultPaths, backbone_slug
from brokenvideos.report.tables import to_markdown, write_table_files

log = logging.getLogger(__name__)
# VID-AID's table numbers for (method, protocol); second_order is ours
PAPER_TABLE = {("nearest", "one_to_many"): 2, ("nearest", "many_to_many"): 3,
               ("linear_probe", "one_to_many"): 4, ("linear_probe", "many_to_many"): 5}
METHOD_TITLE = {"nearest": "training-free nearest reference", "linear_probe": "linear probe",
                "second_order": "training-free second-order spread"}


def _rows(table: pd.DataFrame, split: str, generators: list[str]) -> pd.DataFrame:
    keep = (table.split == split) & (table.generator.isin(generators) | (table.is_generated == 0))
    return table[keep].sort_values("video_id").reset_index(drop=True)


def backbone_label(spec: str) -> str:
    """A table's Model name for a backbone spec: its last path part, without the scheme."""
    return spec.split(":", 1)[-1].rstrip("/").split("/")[-1].split("@")[0] or spec


def methods_for(settings: dict, feature_kind: str) -> list[str]:
    """second_order needs frame features over time: a clip backbone has one feature per video."""
    return [m for m in settings["vidaid"]["methods"] if not (m == "second_order" and feature_kind == "clip")]


def run_protocols(table: pd.DataFrame, frames: dict[str, np.ndarray], settings: dict, seed: int,
                  methods: list[str] | None = None):
    """(predictions, metrics) for every configured method x protocol x reference x test set."""
    cfg = settings["vidaid"]
    missing = sorted(set(table.video_id) - set(frames))
    if missing:
        log.warning("no cached features for %d videos (skipped), e.g. %s", len(missing), missing[0])
        table = table[~table.video_id.isin(missing)]
    gens = generated_generators(table)
    ids = list(table.video_id)
    # each video's input once: its mean feature, or (second_order) its scalar spread
    per_video = {"features": dict(zip(ids, vidaid.video_features(frames, ids))),
                 "spread": {v: vidaid.second_order_spread(frames[v]) for v in ids}}
    build = {"nearest": vidaid.NearestReference, "second_order": vidaid.SecondOrder,
             "linear_probe": lambda: vidaid.LinearProbe(seed=seed, **cfg["probe"])}
    preds, metrics = [], []
    for method in methods or cfg["methods"]:
        value = per_video["spread" if method == "second_order" else "features"]
        for protocol in cfg["protocols"]:
            for ref_name, ref_gens in vidaid.reference_sets(gens, protocol):
                ref = _rows(table, "train", ref_gens)
                y = ref.is_generated.to_numpy(int)
                if len(set(y)) < 2:
                    raise BrokenVideosError(f"detect-vidaid: reference set {ref_name!r} lacks real or generated videos")
                model = build[method]().fit(np.array([value[v] for v in ref.video_id]), y)
                for test_gen in vidaid.test_sets(gens, ref_gens, protocol):
                    test = _rows(table, "test", [test_gen])
                    x = np.array([value[v] for v in test.video_id])
                    score, pred = model.score(x), model.predict(x)
                    labels = test.is_generated.to_numpy(int)
                    m = {"method": method, "protocol": protocol, "reference": ref_name, "test": test_gen,
                         **vidaid.evaluate(labels, pred, score)}
                    if method == "second_order":
                        m.update(direction=model.direction, threshold=model.threshold)
                    metrics.append(m)
                    preds.append(pd.DataFrame({"method": method, "protocol": protocol, "reference": ref_name,
                                               "test": test_gen, "video_id": test.video_id, "label": labels,
                                               "score": score, "predicted": pred}))
    return pd.concat(preds, ignore_index=True), metrics


def paper_table(metrics: list[dict], method: str, protocol: str) -> pd.DataFrame:
    """Rows: reference set x backbone x F1-Real / F1-Fake; columns: test generators (%); '-' where
    the protocol does not test (one-to-many's own generator)."""
    mine = [m for m in metrics if m["method"] == method and m["protocol"] == protocol]
    tests = sorted({m["test"] for m in mine})
    rows = []
    for ref in dict.fromkeys(m["reference"] for m in mine):
        for backbone in dict.fromkeys(m["backbone"] for m in mine):
            by_test = {m["test"]: m for m in mine if m["reference"] == ref and m["backbone"] == backbone}
            for key, label in (("f1_real", "F1-Real"), ("f1_fake", "F1-Fake")):
                row = {"Reference": ref, "Model": backbone, "Metric": label}
                for t in tests:
                    row[t] = f"{100 * by_test[t][key]:.1f}" if t in by_test else "-"
                rows.append(row)
    return pd.DataFrame(rows)


def tsne_figure(table: pd.DataFrame, stores: list[tuple[str, dict]], out: Path, seed: int) -> None:
    """One t-SNE panel per backbone: video features coloured by generator, real in black (VID-AID Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(stores), figsize=(6 * len(stores), 5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (backbone, frames) in zip(axes[0], stores):
        t = table[table.video_id.isin(frames)].sort_values("video_id")
        x = vidaid.video_features(frames, t.video_id)
        emb = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), init="pca",
                   random_state=seed).fit_transform(x)
        for i, gen in enumerate(sorted(t.generator.unique(), key=lambda g: (t.is_generated[t.generator == g].iloc[0], g))):
            sel = (t.generator == gen).to_numpy()
            real = t.is_generated[sel].iloc[0] == 0
            ax.scatter(emb[sel, 0], emb[sel, 1], s=10, label=f"{gen} (real)" if real else gen,
                       color="black" if real else colours(i % 10), marker="x" if real else "o")
        ax.set_title(f"t-SNE of video features ({backbone})")
        ax.set_xticks([]), ax.set_yticks([])
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def add_arguments(p) -> None:
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="default: <results>/detect/splits.parquet")
    p.add_argument("--features", nargs="+", help="feature stores (or their index.parquet), one per backbone "
                                                 "(default: detect.vidaid.backbones' stores)")
    p.add_argument("--out-dir", help="default: <results>/detect/vidaid")


def run(args) -> int:
    cfg = load_config(args.config)
    paths = ResultPaths(cfg["results"])
    settings = detect_settings(cfg)
    table = read_table(args.splits or paths.detect_splits, kind="splits")
    stores = args.features or [paths.feature_store(backbone_slug(b)) for b in vidaid_backbones(settings)]
    out = Path(args.out_dir or paths.detect_vidaid_dir)
    preds, metrics, loaded, backbones = [], [], [], []
    for store in stores:  # features only: no backbone runs here
        meta, frames = read_store(store)
        label = backbone_label(meta["backbone"])
        methods = methods_for(settings, meta.get("feature", "frame"))
        if len(methods) < len(settings["vidaid"]["methods"]):
            log.info("%s has one clip feature per video: no second-order spread", label)
        p, m = run_protocols(table, frames, settings, cfg["seed"], methods)
        preds.append(p.assign(backbone=label))
        metrics += [{"backbone": label, **x} for x in m]
        loaded.append((label, frames))
        backbones.append({"backbone": meta["backbone"], "revision": meta["revision"], "feature": meta.get("feature", "frame")})
    with atomic_path(out / "predictions.parquet", suffix=".parquet") as tmp:
        pd.concat(preds, ignore_index=True).to_parquet(tmp, index=False)
    for method in settings["vidaid"]["methods"]:
        for protocol in settings["vidaid"]["protocols"]:
            t = paper_table(metrics, method, protocol)
            if t.empty:
                continue
            number = PAPER_TABLE.get((method, protocol))
            where = f"VID-AID Table {number} layout" if number else "beyond VID-AID"
            caption = f"{METHOD_TITLE[method]}, {protocol.replace('_', '-')} protocol: F1 (\\%) on test videos ({where})."
            if method == "second_order":
                dirs = sorted({m["direction"] for m in metrics if m["method"] == method and m["protocol"] == protocol})
                caption += " Direction read from the reference set: " + "; ".join(dirs) + "."
            write_table_files(t, out / "tables" / f"vidaid_{method}_{protocol}", caption)
            print(caption.replace("\\%", "%"))  # the caption is LaTeX; the terminal is not
            print(to_markdown(t))
    if settings["vidaid"]["tsne"]:
        tsne_figure(table, loaded, out / "tsne.png", cfg["seed"])
    # last: the rule's output, so its presence means every file above is complete
    write_json(out / "metrics.json", {"backbones": backbones, "threshold": 0.5, "results": metrics})
    log.info("VID-AID: %d evaluations over %d backbones written to %s", len(metrics), len(backbones), out)
    return 0
