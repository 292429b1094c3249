rule prompts:
    output:
        str(P.prompts),
    benchmark:
        str(P.benchmark("prompts"))
    log:
        str(P.prompts_log),
    params:
        bv=BV,
        digest=section_digest("seed", "prompts"),
    conda:
        "../../envs/pipeline.yaml"
    resources:
        **rule_resources("prompts"),
    shell:
        "{params.bv} prompts --config $BROKENVIDEOS_CONFIG --out {output} > {log} 2>&1"
