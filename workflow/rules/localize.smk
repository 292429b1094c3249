# Localization benchmark: train (Ray) → predict (before/after fine-tuning, baselines) → evaluate → tables.
EVAL_SPLIT = config["evaluate"]["split"]


rule train_localizer:
    input:
        videos=rules.dataset.output.videos,
        splits=rules.dataset.output.splits,
    output:
        initial=f"{RESULTS}/train/{{model}}/initial/model.pt",
        final=f"{RESULTS}/train/{{model}}/final/model.pt",
        curves=f"{RESULTS}/train/{{model}}/metrics.csv",
        metrics=f"{RESULTS}/train/{{model}}/metrics.json",
    log:
        f"{RESULTS}/train/{{model}}/train.log",
    params:
        bv=BV,
        digest=section_digest("seed", "train"),
        out_dir=lambda wc, output: Path(output.metrics).parent,
    conda:
        "../../envs/train.yaml"
    threads: train_threads()
    resources:
        gpu=gpus_for("train"),
        **rule_resources("train_localizer"),
    shell:
        "{params.bv} train --config $BROKENVIDEOS_CONFIG --videos {input.videos} --splits {input.splits} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule predict_localizer:
    input:
        weights=f"{RESULTS}/train/{{model}}/{{checkpoint}}/model.pt",
        splits=rules.dataset.output.splits,
    output:
        f"{RESULTS}/predictions/{{model}}/{{checkpoint}}/predictions.parquet",
    log:
        f"{RESULTS}/predictions/{{model}}/{{checkpoint}}/predict.log",
    wildcard_constraints:
        checkpoint="initial|final",
    params:
        bv=BV,
        split=EVAL_SPLIT,
        weights=lambda wc, input: Path(input.weights).parent,
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        **rule_resources("predict_localizer"),
    shell:
        "{params.bv} predict --config $BROKENVIDEOS_CONFIG --weights {params.weights} --split {params.split} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule predict_baseline:
    input:
        splits=rules.dataset.output.splits,
    output:
        f"{RESULTS}/predictions/{{baseline}}/none/predictions.parquet",
    log:
        f"{RESULTS}/predictions/{{baseline}}/none/predict.log",
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


rule evaluate_predictions:
    input:
        predictions=f"{RESULTS}/predictions/{{model}}/{{checkpoint}}/predictions.parquet",
    output:
        per_video=f"{RESULTS}/metrics/{{model}}/{{checkpoint}}/per_video.parquet",
        summary=f"{RESULTS}/metrics/{{model}}/{{checkpoint}}/summary.json",
    log:
        f"{RESULTS}/metrics/{{model}}/{{checkpoint}}/evaluate.log",
    params:
        bv=BV,
        digest=section_digest("evaluate"),
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
        summaries=table_entry_files("summary.json"),
        curves=f"{RESULTS}/train/{LOCALIZER}/metrics.csv",
        final=f"{RESULTS}/predictions/{LOCALIZER}/final/predictions.parquet",
    output:
        table2=report(f"{RESULTS}/tables/table2.md", caption="../report/table2.rst", category="Localization"),
        csv=f"{RESULTS}/tables/table2.csv",
        tex=f"{RESULTS}/tables/table2.tex",
        by_category=f"{RESULTS}/tables/jf_by_category.md",
        by_generator=f"{RESULTS}/tables/jf_by_generator.md",
        curves=report(f"{RESULTS}/tables/figures/training_curves.png", category="Localization"),
        overlays=report(f"{RESULTS}/tables/figures/overlays.png", category="Localization"),
    log:
        f"{RESULTS}/tables/tables.log",
    params:
        bv=BV,
        split=EVAL_SPLIT,
        entries=table_entry_args(),
        overlay_pred=lambda wc, input: Path(input.final).parent,
        out_dir=lambda wc, output: Path(output.table2).parent,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("tables"),
    shell:
        "{params.bv} tables --config $BROKENVIDEOS_CONFIG {params.entries} --curves {input.curves} "
        "--overlay-pred {params.overlay_pred} --split {params.split} --out-dir {params.out_dir} > {log} 2>&1"


rule localize_all:
    input:
        table_entry_files("summary.json"),
