rule prompts:
    output:
        f"{RESULTS}/prompts/prompts.parquet",
    log:
        f"{RESULTS}/prompts/prompts.log",
    params:
        bv=BV,
        digest=section_digest("seed", "prompts"),
    conda:
        "../../envs/pipeline.yaml"
    resources:
        **rule_resources("prompts"),
    shell:
        "{params.bv} prompts --config $BROKENVIDEOS_CONFIG --out {output} > {log} 2>&1"
