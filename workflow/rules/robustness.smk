# Robustness (He et al. V-D, Table II; and the localizers, beyond the papers): per operation x level,
# lossy copies of the test videos → the clean-trained detectors and fine-tuned localizers on them →
# one table each. `robustness.operations` lists <op>-<level> pairs (crf-2); empty turns the phase off.
ROBUST = config["robustness"]
ROBUST_OPS = ROBUST["operations"]
ROBUST_DETECTORS = ROBUST["detectors"] if ROBUST_OPS else []
ROBUST_LOCALIZE = bool(ROBUST_OPS and ROBUST["localizers"])
if set(ROBUST_DETECTORS) - set(DETECTORS):
    raise ValueError(f"config: robustness.detectors: {sorted(set(ROBUST_DETECTORS) - set(DETECTORS))} "
                     "are not runs of detect.detectors")

OP_LEVEL = {"op": "abr|crf|bit-error", "level": "[123]"}  # "bit-error-3" splits one way only


rule degrade_videos:
    input:
        videos=rules.dataset.output.videos,
        splits=rules.dataset.output.splits,
        detect_splits=rules.detect_split.output[0] if ROBUST_DETECTORS else [],
    output:
        str(P.degraded_videos_table("{op}-{level}")),
    benchmark:
        str(P.benchmark("degrade_videos", "{op}", "{level}"))
    log:
        str(P.degraded_log("{op}-{level}", "degrade")),
    wildcard_constraints:
        **OP_LEVEL,
    params:
        bv=BV,
        digest=section_digest("seed", "robustness"),
        detect=lambda wc, input: f"--detect-splits {input.detect_splits}" if input.detect_splits else "",
    conda:
        "../../envs/detect.yaml"
    resources:
        **rule_resources("degrade_videos"),
    shell:
        "{params.bv} degrade-videos --config $BROKENVIDEOS_CONFIG --op {wildcards.op} --level {wildcards.level} "
        "--videos {input.videos} --splits {input.splits} {params.detect} > {log} 2>&1"


rule detect_robustness:
    input:
        copies=str(P.degraded_videos_table("{op}-{level}")),
        splits=rules.detect_split.output[0],
        predictor=rules.detect_predictor.output.model,
        models=expand(str(P.detect_model_metrics("{name}")), name=ROBUST_DETECTORS),
    output:
        str(P.robustness_detect_done("{op}-{level}")),
    benchmark:
        str(P.benchmark("detect_robustness", "{op}", "{level}"))
    log:
        str(P.degraded_log("{op}-{level}", "detect")),
    wildcard_constraints:
        **OP_LEVEL,
    params:
        bv=BV,
        predictor=lambda wc, input: Path(input.predictor).parent,
    conda:
        "../../envs/detect.yaml"
    threads: 1
    # the longest of the jobs left after detect_train: started first, the others pack around it
    priority: 1
    resources:
        **rule_resources("detect_robustness"),
    shell:
        "{params.bv} detect-robustness --config $BROKENVIDEOS_CONFIG --op {wildcards.op} --level {wildcards.level} "
        "--predictor {params.predictor} --splits {input.splits} --threads {threads} > {log} 2>&1"


rule localize_robustness:
    input:
        copies=str(P.degraded_videos_table("{op}-{level}")),
        weights=expand(str(P.train_weights("{model}", "final")), model=LOCALIZERS),
    output:
        str(P.robustness_localize_done("{op}-{level}")),
    benchmark:
        str(P.benchmark("localize_robustness", "{op}", "{level}"))
    log:
        str(P.degraded_log("{op}-{level}", "localize")),
    wildcard_constraints:
        **OP_LEVEL,
    params:
        bv=BV,
        digest=section_digest("evaluate"),
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        **rule_resources("localize_robustness"),
    shell:
        "{params.bv} localize-robustness --config $BROKENVIDEOS_CONFIG --op {wildcards.op} --level {wildcards.level} "
        "--threads {threads} > {log} 2>&1"


rule robustness_tables:
    input:
        detect=expand(str(P.robustness_detect_done("{ol}")), ol=ROBUST_OPS) if ROBUST_DETECTORS else [],
        clean_detect=expand(str(P.detect_timing("{name}")), name=ROBUST_DETECTORS),
        localize=expand(str(P.robustness_localize_done("{ol}")), ol=ROBUST_OPS) if ROBUST_LOCALIZE else [],
        clean_localize=expand(str(P.metrics_summary("{model}", "final")), model=LOCALIZERS) if ROBUST_LOCALIZE else [],
    output:
        json=str(P.robustness_metrics),
        figure=report(str(P.robustness_figure), category="Robustness"),
        tables=([f"{P.robustness_table('detect_table2')}.md"] if ROBUST_DETECTORS else [])
        + ([f"{P.robustness_table('localize_robustness')}.md"] if ROBUST_LOCALIZE else []),
    benchmark:
        str(P.benchmark("robustness_tables"))
    log:
        str(P.robustness_tables_log),
    params:
        bv=BV,
    conda:
        "../../envs/train.yaml"
    resources:
        **rule_resources("robustness_tables"),
    shell:
        "{params.bv} robustness-tables --config $BROKENVIDEOS_CONFIG > {log} 2>&1"


rule robustness_all:
    input:
        rules.robustness_tables.output if ROBUST_OPS else [],
