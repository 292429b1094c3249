# Detection (He et al. 2024; Sora artifact labels): split → frame predictor (real videos only) →
# frozen caches → train every detector (one Ray run) → evaluate per detector → Sora labels → tables.
# DETECT, DETECTORS, SORA, DET and detect_threads() are in common.smk.

rule detect_split:
    input:
        videos=rules.dataset.output.videos,
    output:
        f"{DET}/splits.parquet",
    log:
        f"{DET}/split.log",
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
        model=f"{DET}/predictor/model/model.pt",
        metrics=f"{DET}/predictor/metrics.json",
    log:
        f"{DET}/predictor/train.log",
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


rule detect_encoder_features:
    input:
        splits=rules.detect_split.output[0],
    output:
        features=f"{DET}/features/encoder.parquet",
        meta=f"{DET}/features/encoder.json",
    log:
        f"{DET}/features/encoder.log",
    params:
        bv=BV,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    resources:
        **rule_resources("detect_encoder_features"),
    shell:
        "{params.bv} detect-features --config $BROKENVIDEOS_CONFIG --splits {input.splits} "
        "--encoder-out {output.features} --threads {threads} > {log} 2>&1"


rule detect_prediction_errors:
    input:
        splits=rules.detect_split.output[0],
        predictor=rules.detect_predictor.output.model,
    output:
        errors=f"{DET}/features/errors.parquet",
        meta=f"{DET}/features/errors.json",
    log:
        f"{DET}/features/errors.log",
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


rule detect_train:
    input:
        splits=rules.detect_split.output[0],
        predictor=rules.detect_predictor.output.model,
        features=rules.detect_encoder_features.output.features,
        errors=rules.detect_prediction_errors.output.errors,
    output:
        metrics=expand(f"{DET}/models/{{name}}/metrics.json", name=DETECTORS),
        sora=expand(f"{DET}/sora_models/{{name}}/config.json", name=SORA),
        summary=f"{DET}/models/train.json",
    log:
        f"{DET}/models/train.log",
    params:
        bv=BV,
        predictor=lambda wc, input: Path(input.predictor).parent,
        models_dir=lambda wc, output: Path(output.summary).parent,
        sora_dir=lambda wc, output: Path(output.summary).parents[1] / "sora_models",
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
        models=f"{DET}/models/{{name}}/metrics.json",
        features=rules.detect_encoder_features.output.features,
        errors=rules.detect_prediction_errors.output.errors,
    output:
        f"{DET}/eval/{{name}}/timing.json",
    log:
        f"{DET}/eval/{{name}}/evaluate.log",
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
        model=f"{DET}/sora_models/{{name}}/config.json",
        features=rules.detect_encoder_features.output.features,
    output:
        f"{DET}/sora/{{name}}/metrics.json",
    log:
        f"{DET}/sora/{{name}}/evaluate.log",
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
        evals=expand(f"{DET}/eval/{{name}}/timing.json", name=DETECTORS),
        sora=expand(f"{DET}/sora/{{name}}/metrics.json", name=SORA),
    output:
        table1=f"{DET}/tables/detect_table1.md",
        table1_csv=f"{DET}/tables/detect_table1.csv",
        table1_tex=f"{DET}/tables/detect_table1.tex",
        table3=f"{DET}/tables/detect_table3.md",
        table3_csv=f"{DET}/tables/detect_table3.csv",
        table3_tex=f"{DET}/tables/detect_table3.tex",
        sora=f"{DET}/tables/sora_labels.md",
        sora_csv=f"{DET}/tables/sora_labels.csv",
        sora_tex=f"{DET}/tables/sora_labels.tex",
    log:
        f"{DET}/tables/detect_tables.log",
    params:
        bv=BV,
        out_dir=lambda wc, output: Path(output.table1).parent,
        eval_root=lambda wc, input: Path(input.evals[0]).parents[1],
        sora_root=lambda wc, input: Path(input.sora[0]).parents[1] if input.sora else f"{DET}/sora",
    conda:
        "../../envs/detect.yaml"
    resources:
        **rule_resources("detect_tables"),
    shell:
        "{params.bv} detect-tables --config $BROKENVIDEOS_CONFIG --eval-root {params.eval_root} --sora-root {params.sora_root} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule detect_all:
    input:
        rules.detect_tables.output,


rule detect_evaluate_all:
    input:
        expand(f"{DET}/eval/{{name}}/timing.json", name=DETECTORS),
        expand(f"{DET}/sora/{{name}}/metrics.json", name=SORA),
