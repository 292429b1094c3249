# Detection (He et al. 2024; Sora artifact labels): split → frame predictor (real videos only) →
# frozen caches → train every detector (one Ray run) → evaluate per detector → Sora labels → tables;
# and VID-AID's detectors straight from the encoder cache (detect_vidaid).
# DETECT, DETECTORS, SORA and detect_threads() are in common.smk.

rule detect_split:
    input:
        videos=rules.dataset.output.videos,
    output:
        str(P.detect_splits),
    benchmark:
        str(P.benchmark("detect_split"))
    log:
        str(P.detect_split_log),
    params:
        bv=BV,
        digest=section_digest("seed", "detect"),
    conda:
        "../../envs/detect.yaml"
    resources:
        **rule_resources("detect_split"),
    shell:
        "{params.bv} detect-split --config $BROKENVIDEOS_CONFIG --videos {input.videos} --out {output} > {log} 2>&1"


rule detect_predictor:
    input:
        splits=rules.detect_split.output[0],
    output:
        model=str(P.detect_predictor_weights),
        metrics=str(P.detect_predictor_metrics),
    benchmark:
        str(P.benchmark("detect_predictor"))
    log:
        str(P.detect_predictor_log),
    params:
        bv=BV,
        out_dir=lambda wc, output: Path(output.metrics).parent,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    resources:
        **rule_resources("detect_predictor"),
    shell:
        "{params.bv} detect-predictor --config $BROKENVIDEOS_CONFIG --splits {input.splits} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule detect_backbone_features:
    input:
        splits=rules.detect_split.output[0],
    output:
        index=str(P.feature_index("{backbone}")),
        meta=str(P.feature_index_meta("{backbone}")),
    wildcard_constraints:
        backbone="|".join(re.escape(b) for b in BACKBONES) or "-",
    benchmark:
        str(P.benchmark("detect_backbone_features", "{backbone}"))
    log:
        str(P.feature_log("{backbone}")),
    params:
        bv=BV,
        spec=lambda wc: BACKBONES[wc.backbone],
        store=lambda wc: P.feature_store(wc.backbone),
    conda:
        "../../envs/detect.yaml"
    # the store's shards are not outputs: Snakemake keeps them, so a re-run encodes only what is missing
    threads: DETECT.get("features", {}).get("workers", 1)
    resources:
        **rule_resources("detect_backbone_features"),
    shell:
        "{params.bv} detect-features --config $BROKENVIDEOS_CONFIG --splits {input.splits} "
        "--backbone {params.spec:q} --store {params.store} --threads {threads} > {log} 2>&1"


rule detect_prediction_errors:
    input:
        splits=rules.detect_split.output[0],
        predictor=rules.detect_predictor.output.model,
    output:
        errors=str(P.detect_errors),
        meta=str(P.detect_errors_meta),
    benchmark:
        str(P.benchmark("detect_prediction_errors"))
    log:
        str(P.detect_errors_log),
    params:
        bv=BV,
        predictor=lambda wc, input: Path(input.predictor).parent,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    resources:
        **rule_resources("detect_prediction_errors"),
    shell:
        "{params.bv} detect-features --config $BROKENVIDEOS_CONFIG --splits {input.splits} "
        "--predictor {params.predictor} --errors-out {output.errors} --threads {threads} > {log} 2>&1"


rule detect_features:
    """Every backbone's feature store and the prediction errors (the DVC stage of the same name)."""
    input:
        [str(P.feature_index_meta(b)) for b in BACKBONES],
        rules.detect_prediction_errors.output.errors,


rule detect_train:
    input:
        splits=rules.detect_split.output[0],
        predictor=rules.detect_predictor.output.model,
        features=str(P.feature_index_meta(ENCODER_SLUG)),
        errors=rules.detect_prediction_errors.output.errors,
    output:
        metrics=expand(str(P.detect_model_metrics("{name}")), name=DETECTORS),
        sora=expand(str(P.detect_sora_model_config("{name}")), name=SORA),
        summary=str(P.detect_train_summary),
    benchmark:
        str(P.benchmark("detect_train"))
    log:
        str(P.detect_train_log),
    params:
        bv=BV,
        predictor=lambda wc, input: Path(input.predictor).parent,
        models_dir=lambda wc, output: Path(output.summary).parent,
        sora_dir=P.detect_sora_models_dir,
    conda:
        "../../envs/detect.yaml"
    threads: detect_threads()
    resources:
        gpu=gpus_for("train"),
        **rule_resources("detect_train"),
    shell:
        "{params.bv} detect-train --config $BROKENVIDEOS_CONFIG --splits {input.splits} --predictor {params.predictor} "
        "--features {input.features} --errors {input.errors} --models-dir {params.models_dir} "
        "--sora-dir {params.sora_dir} > {log} 2>&1"


rule detect_evaluate:
    input:
        splits=rules.detect_split.output[0],
        models=str(P.detect_model_metrics("{name}")),
        features=str(P.feature_index_meta(ENCODER_SLUG)),
        errors=rules.detect_prediction_errors.output.errors,
    output:
        str(P.detect_timing("{name}")),
    benchmark:
        str(P.benchmark("detect_evaluate", "{name}"))
    log:
        str(P.detect_eval_log("{name}")),
    wildcard_constraints:
        name="|".join(DETECTORS) or "NONE",
    params:
        bv=BV,
        models=lambda wc, input: Path(input.models).parent,
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    resources:
        **rule_resources("detect_evaluate"),
    shell:
        "{params.bv} detect-evaluate --config $BROKENVIDEOS_CONFIG --name {wildcards.name} --models {params.models} "
        "--splits {input.splits} --features {input.features} --errors {input.errors} --out-dir {params.out_dir} "
        "--threads {threads} > {log} 2>&1"


rule detect_sora:
    input:
        splits=rules.detect_split.output[0],
        model=str(P.detect_sora_model_config("{name}")),
        features=str(P.feature_index_meta(ENCODER_SLUG)),
    output:
        str(P.detect_sora_metrics("{name}")),
    benchmark:
        str(P.benchmark("detect_sora", "{name}"))
    log:
        str(P.detect_sora_log("{name}")),
    params:
        bv=BV,
        model=lambda wc, input: Path(input.model).parent,
        out_dir=lambda wc, output: Path(output[0]).parent,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    resources:
        **rule_resources("detect_sora"),
    shell:
        "{params.bv} detect-sora --config $BROKENVIDEOS_CONFIG --model {params.model} --splits {input.splits} "
        "--features {input.features} --out-dir {params.out_dir} > {log} 2>&1"


rule detect_tables:
    input:
        evals=expand(str(P.detect_timing("{name}")), name=DETECTORS),
        sora=expand(str(P.detect_sora_metrics("{name}")), name=SORA),
    output:
        table1=f"{P.detect_table('detect_table1')}.md",
        table1_csv=f"{P.detect_table('detect_table1')}.csv",
        table1_tex=f"{P.detect_table('detect_table1')}.tex",
        table3=f"{P.detect_table('detect_table3')}.md",
        table3_csv=f"{P.detect_table('detect_table3')}.csv",
        table3_tex=f"{P.detect_table('detect_table3')}.tex",
        sora=f"{P.detect_table('sora_labels')}.md",
        sora_csv=f"{P.detect_table('sora_labels')}.csv",
        sora_tex=f"{P.detect_table('sora_labels')}.tex",
    benchmark:
        str(P.benchmark("detect_tables"))
    log:
        str(P.detect_tables_log),
    params:
        bv=BV,
        out_dir=lambda wc, output: Path(output.table1).parent,
        eval_root=P.detect_eval_root,
        sora_root=P.detect_sora_root,
    conda:
        "../../envs/detect.yaml"
    resources:
        **rule_resources("detect_tables"),
    shell:
        "{params.bv} detect-tables --config $BROKENVIDEOS_CONFIG --eval-root {params.eval_root} --sora-root {params.sora_root} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule detect_vidaid:
    input:
        splits=rules.detect_split.output[0],
        features=VIDAID_STORES,
    output:
        metrics=str(P.detect_vidaid_metrics),
    benchmark:
        str(P.benchmark("detect_vidaid"))
    log:
        str(P.detect_vidaid_log),
    params:
        bv=BV,
        out_dir=P.detect_vidaid_dir,
        digest=section_digest("seed", "detect"),
    conda:
        "../../envs/detect.yaml"
    resources:
        **rule_resources("detect_vidaid"),
    shell:
        "{params.bv} detect-vidaid --config $BROKENVIDEOS_CONFIG --splits {input.splits} --features {input.features} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule detect_all:
    input:
        rules.detect_tables.output,
        rules.detect_vidaid.output,


rule detect_evaluate_all:
    input:
        expand(str(P.detect_timing("{name}")), name=DETECTORS),
        expand(str(P.detect_sora_metrics("{name}")), name=SORA),
