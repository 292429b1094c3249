rule generate_shard:
    input:
        prompts=rules.prompts.output[0],
    output:
        manifest=str(P.shard_manifest("{generator}", "{shard}")),
    benchmark:
        str(P.benchmark("generate_shard", "{generator}", "{shard}"))
    log:
        str(P.shard_log("{generator}", "{shard}")),
    params:
        bv=BV,
        digest=lambda wc: section_digest("seed", "video") + json.dumps(GENERATORS[wc.generator], sort_keys=True),
    conda:
        "../../envs/generate.yaml"
    threads: 1
    resources:
        gpu=gpus_for("generate"),
        **rule_resources("generate_shard"),
    shell:
        "{params.bv} generate --config $BROKENVIDEOS_CONFIG --generator {wildcards.generator} "
        "--shard {wildcards.shard} --prompts {input.prompts} --out {output.manifest} > {log} 2>&1"


rule generate_all:
    input:
        shard_files(P.shard_manifest),
