# Localization benchmark: train (Ray) → predict (before/after fine-tuning, baselines) → evaluate → tables.
EVAL_SPLIT = config["evaluate"]["split"]


rule train_localizer:
    input:
        videos=rules.dataset.output.videos,
        splits=rules.dataset.output.splits,
    output:
        initial=str(P.train_weights("{model}", "initial")),
        final=str(P.train_weights("{model}", "final")),
        curves=str(P.train_curves("{model}")),
        metrics=str(P.train_metrics("{model}")),
    benchmark:
        str(P.benchmark("train_localizer", "{model}"))
    log:
        str(P.train_log("{model}")),
    wildcard_constraints:
        model="|".join(LOCALIZERS),
    params:
        bv=BV,
        digest=localizer_digest,
        out_dir=lambda wc, output: Path(output.metrics).parent,
    conda:
        "../../envs/train.yaml"
    threads: train_threads()
    resources:
        gpu=gpus_for("train"),
        **rule_resources("train_localizer"),
    shell:
        "{params.bv} train --config $BROKENVIDEOS_CONFIG --localizer {wildcards.model} --videos {input.videos} "
        "--splits {input.splits} --out-dir {params.out_dir} > {log} 2>&1"


rule predict_localizer:
    input:
        weights=str(P.train_weights("{model}", "{checkpoint}")),
        splits=rules.dataset.output.splits,
    output:
        str(P.predictions_table("{model}", "{checkpoint}")),
    benchmark:
        str(P.benchmark("predict_localizer", "{model}", "{checkpoint}"))
    log:
        str(P.predict_log("{model}", "{checkpoint}")),
    wildcard_constraints:
        model="|".join(LOCALIZERS),
        checkpoint="initial|final",
    params:
        bv=BV,
        split=EVAL_SPLIT,
        weights=lambda wc, input: Path(input.weights).parent,
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        **rule_resources("predict_localizer"),
    shell:
        "{params.bv} predict --config $BROKENVIDEOS_CONFIG --weights {params.weights} --split {params.split} "
        "--out-dir {params.out_dir} --threads {threads} > {log} 2>&1"


rule predict_baseline:
    input:
        splits=rules.dataset.output.splits,
    output:
        str(P.predictions_table("{baseline}", "none")),
    benchmark:
        str(P.benchmark("predict_baseline", "{baseline}"))
    log:
        str(P.predict_log("{baseline}", "none")),
    wildcard_constraints:
        baseline="|".join(EVAL_BASELINES),
    params:
        bv=BV,
        split=EVAL_SPLIT,
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("predict_baseline"),
    shell:
        "{params.bv} predict --config $BROKENVIDEOS_CONFIG --baseline {wildcards.baseline} --split {params.split} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule import_predictions:
    input:
        masks=lambda wc: EXTERNAL[(wc.model, wc.checkpoint)]["dir"],
        splits=rules.dataset.output.splits,
    output:
        str(P.predictions_table("{model}", "{checkpoint}")),
    benchmark:
        str(P.benchmark("import_predictions", "{model}", "{checkpoint}"))
    log:
        str(P.import_log("{model}", "{checkpoint}")),
    wildcard_constraints:
        model="|".join(sorted({name for name, _ in EXTERNAL})) or "(?!)",
        checkpoint="initial|final",
    params:
        bv=BV,
        split=EVAL_SPLIT,
        exp=lambda wc: EXTERNAL[(wc.model, wc.checkpoint)].get("exp", "artifact"),
        entry=lambda wc: json.dumps(EXTERNAL[(wc.model, wc.checkpoint)], sort_keys=True),  # re-run trigger
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("import_predictions"),
    shell:
        "{params.bv} import-predictions --config $BROKENVIDEOS_CONFIG --format mevis --in {input.masks} "
        "--name {wildcards.model} --split {params.split} --exp {params.exp} --out-dir {params.out_dir} > {log} 2>&1"


rule evaluate_predictions:
    input:
        predictions=str(P.predictions_table("{model}", "{checkpoint}")),
    output:
        per_video=str(P.per_video_metrics("{model}", "{checkpoint}")),
        summary=str(P.metrics_summary("{model}", "{checkpoint}")),
    benchmark:
        str(P.benchmark("evaluate_predictions", "{model}", "{checkpoint}"))
    log:
        str(P.evaluate_log("{model}", "{checkpoint}")),
    params:
        bv=BV,
        digest=evaluate_digest(),
        split=EVAL_SPLIT,
        pred_dir=lambda wc, input: Path(input.predictions).parent,
        out_dir=lambda wc, output: Path(output.summary).parent,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("evaluate_predictions"),
    shell:
        "{params.bv} evaluate --config $BROKENVIDEOS_CONFIG --pred-dir {params.pred_dir} --split {params.split} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule tables:
    input:
        summaries=table_entry_files(P.metrics_summary),
        curves=expand(str(P.train_curves("{model}")), model=LOCALIZERS),
        final=expand(str(P.predictions_table("{model}", "final")), model=LOCALIZERS),
    output:
        table2=report(f"{P.table('table2')}.md", caption="../report/table2.rst", category="Localization"),
        csv=f"{P.table('table2')}.csv",
        json=f"{P.table('table2')}.json",
        tex=f"{P.table('table2')}.tex",
        by_category=f"{P.table('jf_by_category')}.md",
        by_generator=f"{P.table('jf_by_generator')}.md",
        frames=report(f"{P.table('frames')}.md", caption="../report/frames.rst", category="Localization"),
        frames_by_category=f"{P.table('frames_by_category')}.md",
        curves=report(str(P.table_figure("training_curves")), category="Localization"),
        overlays=report(str(P.table_figure("overlays")), category="Localization"),
    benchmark:
        str(P.benchmark("tables"))
    log:
        str(P.tables_log),
    params:
        bv=BV,
        split=EVAL_SPLIT,
        entries=table_entry_args(),
        curves=lambda wc, input: " ".join(f"--curves {m} {c}" for m, c in zip(LOCALIZERS, input.curves)),
        overlays=lambda wc, input: " ".join(f"--overlay-pred {m} {Path(p).parent}" for m, p in zip(LOCALIZERS, input.final)),
        out_dir=lambda wc, output: Path(output.table2).parent,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("tables"),
    shell:
        "{params.bv} tables --config $BROKENVIDEOS_CONFIG {params.entries} {params.curves} {params.overlays} "
        "--split {params.split} --out-dir {params.out_dir} > {log} 2>&1"


rule localize_all:
    input:
        table_entry_files(P.metrics_summary),
